"""The simulated shop's catalogue: products, each sold as a few variants with a SKU and a list
price of their own, a few of them launched lately and one during the run.

A SKU is a variant as a shop lists it (``EARBUDS-03``: a colour, a size, a model), one price
for every buyer; a promotion takes a share off the price, it makes no new product. A customer
who buys a product again mostly takes the variant they took before (``product:<sku>``). Most
variants were on sale before the history of past orders begins; the newest variant of a few
products launched months before the run, and one launches 20 minutes into it, so
``early-adopter`` (bought within 14 days of a SKU's first sale) picks out the customers of the
history's first weeks and of a launch. The catalogue is the same for every seed.
"""

import math
import random
import zlib
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

ON_SALE_BEFORE_HISTORY = timedelta(days=1095)  # the history covers 730
# when a product's newest variant launched, before the stream starts
RECENT_LAUNCHES = tuple(timedelta(days=d) for d in (30, 75, 150, 250))
RECENT_LAUNCH_SHARE = 1 / 4  # of products
# a variant that goes on sale during the run (a negative time before its start)
LAUNCHED_DURING_THE_RUN = {"EARBUDS": -timedelta(minutes=20)}
VARIANTS_PER_PRODUCT = (2, 5)
SAME_VARIANT_SHARE = 0.8  # of a customer's lines of a product: the variant they always take
PROMOTION_SHARE = 0.12  # of order lines: a share off the list price
PROMOTION_PRICES = (0.8, 0.85, 0.9, 0.95)


@dataclass(frozen=True, slots=True)
class Variant:
    sku: str
    list_price: Decimal  # whole CNY
    on_sale_for: timedelta  # before the stream's start: no order before that has it


@dataclass(frozen=True, slots=True)
class Product:
    category: str
    sku: str  # the prefix of its variants' SKUs
    name: str
    median_price: float  # CNY; its variants' list prices are log-normal around it
    spread: float  # sigma of the log-normal
    popularity: float  # relative share of order lines

    def variants(self) -> tuple[Variant, ...]:
        return _VARIANTS[self.sku]

    def on_sale(self, before_start: timedelta) -> tuple[Variant, ...]:
        """The variants on sale at ``before_start`` before the stream's start (the first one
        always is: it was on sale before the history)."""
        return tuple(v for v in self.variants() if v.on_sale_for >= before_start)

    def variant_for(self, customer_id: str, before_start: timedelta, rng: random.Random) -> Variant:
        """The variant a customer takes: mostly their own (the same on every order: one of the
        variants on sale before the history, chosen by who and what), else any on sale."""
        if rng.random() < SAME_VARIANT_SHARE:
            standing = [v for v in self.variants() if v.on_sale_for >= ON_SALE_BEFORE_HISTORY]
            return standing[zlib.crc32(f"{customer_id}:{self.sku}".encode()) % len(standing)]
        return rng.choice(self.on_sale(before_start))


CATALOG = [
    Product("food", "SNACKS", "坚果零食礼包", 39, 0.4, 10),
    Product("food", "RICE", "五常大米 5kg", 69, 0.3, 5),
    Product("food", "TEA", "龙井茶", 168, 0.6, 3),
    Product("apparel", "TSHIRT", "纯棉T恤", 79, 0.4, 9),
    Product("apparel", "SHOES", "跑步鞋", 329, 0.4, 5),
    Product("apparel", "JACKET", "羽绒服", 499, 0.5, 3),
    Product("beauty", "SERUM", "精华液", 259, 0.5, 6),
    Product("beauty", "LIPSTICK", "口红", 189, 0.3, 4),
    Product("home", "TOWEL", "毛巾套装", 39, 0.3, 6),
    Product("home", "KETTLE", "电热水壶", 129, 0.4, 4),
    Product("home", "SOFA", "布艺沙发", 3500, 0.4, 0.3),
    Product("baby", "DIAPERS", "纸尿裤", 139, 0.3, 4),
    Product("books", "NOVEL", "长篇小说", 45, 0.4, 5),
    Product("electronics", "CHARGER", "快充充电器", 59, 0.4, 6),
    Product("electronics", "EARBUDS", "无线耳机", 299, 0.6, 4),
    Product("electronics", "PHONE", "智能手机", 3299, 0.4, 1.0),
    Product("electronics", "LAPTOP", "笔记本电脑", 6499, 0.3, 0.3),
    Product("luxury", "WATCH", "机械腕表", 26000, 0.5, 0.05),
    Product("luxury", "HANDBAG", "真皮手提包", 16000, 0.4, 0.06),
]
INDUSTRIAL = Product("industrial", "SERVER", "服务器机柜", 45000, 0.4, 0)
PHONE = next(product for product in CATALOG if product.sku == "PHONE")


def unit_price(variant: Variant, rng: random.Random) -> Decimal:
    """What a line pays for one: the list price, now and then with a promotion's share off."""
    if rng.random() >= PROMOTION_SHARE:
        return variant.list_price
    off = Decimal(str(rng.choice(PROMOTION_PRICES)))
    return max(Decimal(1), (variant.list_price * off).to_integral_value())


def _variants(product: Product) -> tuple[Variant, ...]:
    rng = random.Random(f"ordertag-catalog:{product.sku}")  # noqa: S311  (a fixed catalogue)
    count = rng.randint(*VARIANTS_PER_PRODUCT)
    launched_lately = rng.random() < RECENT_LAUNCH_SHARE
    variants = []
    for index in range(count):
        price = rng.lognormvariate(math.log(product.median_price), product.spread)
        newest = index == count - 1
        variants.append(
            Variant(
                f"{product.sku}-{index + 1:02d}",
                Decimal(max(1, round(price))),
                rng.choice(RECENT_LAUNCHES)
                if newest and launched_lately
                else ON_SALE_BEFORE_HISTORY,
            )
        )
    during_run = LAUNCHED_DURING_THE_RUN.get(product.sku)
    if during_run is not None:
        price = rng.lognormvariate(math.log(product.median_price), product.spread)
        new = f"{product.sku}-{count + 1:02d}"
        variants.append(Variant(new, Decimal(max(1, round(price))), during_run))
    return tuple(variants)


_VARIANTS = {product.sku: _variants(product) for product in [*CATALOG, INDUSTRIAL]}
