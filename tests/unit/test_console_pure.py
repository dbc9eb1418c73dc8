"""The console's pure parts: language choice, labels for the whole default taxonomy, rule
conditions in words, exports, roles onto scopes, the tags a person may remove."""

import csv
import io
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from services.console.customers import removable_tags
from services.console.export import export_row, header, xlsx_bytes, xlsx_row
from services.console.i18n import LANGUAGES, language, pick_language, tag_options
from services.console.rule_table import customer_rule_rows, rule_rows
from services.console.rule_words import in_words
from services.console.sessions import Session
from services.console.settings import ConsoleSettings
from services.console.users import Role
from services.simulator.stream import CATALOG, CHANNELS, INDUSTRIAL
from services.tagger.builtin_labels import reason_labels
from services.tagger.queries import listed
from services.tagger.rules.regions import REGION_BY_PROVINCE
from services.tagger.rules.schema import CatalogTag, TagPermissions, load_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from shared.auth import Scope
from shared.exports import csv_export, csv_line
from shared.models import OrderStatus
from shared.reader_zone import reader_zone
from tests.unit.test_conditions_in_sentences import as_read
from tests.unit.test_exports import body_of, rows_of


@pytest.mark.parametrize(
    ("cookie", "accept", "expected"),
    [
        (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        (None, "en-US,en;q=0.9", "en"),
        (None, "fr-FR,en;q=0.5,zh;q=0.9", "zh-CN"),  # the highest q that is supported wins
        (None, "de-DE", "zh-CN"),
        (None, None, "zh-CN"),
        ("en", "zh-CN", "en"),  # the person's pick beats the browser
        ("xx", "en", "en"),  # an unknown cookie is ignored
    ],
)
def test_language_follows_the_cookie_then_the_browser(
    cookie: str | None, accept: str | None, expected: str
) -> None:
    assert pick_language(cookie, accept) == expected


def test_every_default_tag_family_region_and_status_has_a_label_in_each_language() -> None:
    rules = load_rules(DEFAULT_RULES_FILE)
    for code in LANGUAGES:
        labels = language(code).labels
        assert {t.name for t in rules.tags} <= set(labels["tags"]), code
        assert {f.name for f in rules.families} <= set(labels["families"]), code
        assert set(REGION_BY_PROVINCE.values()) <= set(labels["regions"]), code
        assert {s.value for s in OrderStatus} <= set(labels["statuses"]), code


def test_the_taxonomy_reads_in_chinese() -> None:
    zh = language("zh-CN")
    shown = [zh.tag_label(n) for n in ("urgent", "regular", "vip", "new-customer")]
    assert shown == ["紧急", "常规", "VIP客户", "新客户"]
    assert zh.tag_label("region:north-china") == "华北"
    assert zh.tag_label("region:east-china") == "华东"
    assert zh.tag_label("status:pending") == "待处理"
    assert zh.tag_label("status:completed") == "已完成"
    assert zh.tag_label("团购") == "团购"  # a custom tag named in Chinese shows as itself


def test_the_simulators_categories_and_channels_have_a_label_in_each_language() -> None:
    categories = {product.category for product in [*CATALOG, INDUSTRIAL]}
    channels = {channel for channel, _ in CHANNELS}
    for code in LANGUAGES:
        labels = language(code).labels
        assert categories <= set(labels["categories"]), code
        assert channels <= set(labels["channels"]), code


def test_category_and_preference_tags_read_in_chinese_and_unknown_values_as_themselves() -> None:
    zh, en = language("zh-CN"), language("en")

    assert zh.tag_label("category:beauty") == "美妆"
    assert zh.tag_label("prefers:beauty") == "偏好：美妆"
    assert en.tag_label("prefers:beauty") == "Prefers: Beauty"
    assert zh.tag_label("category:小家电") == "小家电"
    assert zh.tag_label("prefers:garden") == "偏好：garden"
    assert zh.tag_label("product:lipstick-187") == "偏好商品：lipstick-187"  # no name known
    assert en.tag_label("product:lipstick-187") == "Prefers product: lipstick-187"
    assert zh.tag_label("status:lost") == "lost"
    assert zh.value_label("channels", "mini_program") == "小程序"
    assert zh.value_label("categories", "electronics") == "数码电子"
    assert zh.value_label("channels", "kiosk") == "kiosk"


def test_a_product_tag_reads_as_the_products_name_with_its_sku() -> None:
    zh, en = language("zh-CN"), language("en")
    earbuds = {"sku": "EARBUDS-06", "name": "无线耳机"}
    named = {"product:earbuds-06": earbuds, "category:beauty": earbuds}

    assert zh.tag_label("product:earbuds-06", named) == "偏好商品：无线耳机 (EARBUDS-06)"
    assert en.tag_label(
        "product:earbuds-06", {"product:earbuds-06": {**earbuds, "name": "Wireless earbuds"}}
    ) == ("Prefers product: Wireless earbuds (EARBUDS-06)")
    assert zh.tag_label("product:case-01", named) == "偏好商品：case-01"  # no name stored
    assert zh.tag_label("category:beauty", named) == "美妆"  # only a product's prefix names


def test_alert_kinds_severities_and_states_read_in_the_language_on_order_and_customer_pages() -> (
    None
):
    zh, en = language("zh-CN"), language("en")

    assert zh.word("alerts.kind.", "fraud_risk") == "欺诈风险"
    assert en.word("alerts.kind.", "fraud_risk") == "Fraud risk"
    assert zh.word("alerts.status.", "open") == "未处理"
    assert zh.word("alerts.severity.", "critical") != "critical"
    assert zh.word("alerts.kind.", "made_up") == "made_up"  # no word: the value itself


def test_category_reasons_show_the_categorys_label() -> None:
    labels = reason_labels("zh-CN")
    assert labels is not None

    assert labels.value("categories", "apparel") == "服装"
    assert labels.value("category", "beauty") == "美妆"
    assert labels.tags["category:food"] == "食品"


def test_both_message_catalogs_have_the_same_keys() -> None:
    """Less a language's plural forms (``_one``): Chinese has none, English its singulars."""
    plural = re.compile(r"_(zero|one|two|few|many)$")
    zh, en = (set(language(code).messages) for code in ("zh-CN", "en"))
    assert {k for k in zh if not plural.search(k)} == {k for k in en if not plural.search(k)}
    assert {plural.sub("", k) for k in zh | en if plural.search(k)} <= zh & en


@pytest.mark.parametrize(
    ("code", "n", "said"),
    [("en", 1, "1 order selected"), ("en", 2, "2 orders selected"), ("en", 0, "0 orders selected")]
    + [("zh-CN", n, f"已选 {n} 个订单") for n in (1, 2)],
)
def test_a_count_reads_in_its_plural_form(code: str, n: int, said: str) -> None:
    assert language(code).t("bulk.selected", n=n) == said


def test_rule_conditions_read_as_words_in_each_language() -> None:
    rules = {r.id: r for r in load_rules(DEFAULT_RULES_FILE).rules}
    vip = rules["priority.vip-large-order"].when
    assert as_read(in_words(vip, "en")) == (
        "(VIP flag is set or lifetime spend ≥ 500,000) and order amount ≥ 5,000"
    )
    assert as_read(in_words(vip, "zh-CN")) == "(有 VIP 标记 或 累计消费 ≥ 500,000) 且 金额 ≥ 5,000"
    assert as_read(in_words(rules["risk.velocity"].when, "zh-CN")) == "10 分钟内至少 5 单"


def test_facts_and_their_values_in_conditions_read_in_each_language() -> None:
    rules = {r.id: r for r in load_rules(DEFAULT_RULES_FILE).rules}
    fast = rules["priority.fast-shipping"]
    assert as_read(in_words(fast.when, "zh-CN")) == "配送方式 属于 [加急快递, 当日达]"
    assert as_read(in_words(fast.holds_while, "zh-CN")) == "订单状态 属于 [待处理, 处理中]"
    assert as_read(in_words(rules["order-type.return"].when, "zh-CN")) == "订单类型 等于 退货"
    assert as_read(in_words(fast.when, "en")) == "Shipping method is one of [Express, Same day]"
    assert (
        as_read(in_words(fast.holds_while, "en")) == "Order status is one of [Pending, Processing]"
    )


def test_the_rules_table_shows_each_rules_reason_template_in_the_readers_language() -> None:
    rules = load_rules(DEFAULT_RULES_FILE)
    zh = {row["id"]: row["reason"] for row in rule_rows(rules, language("zh-CN"), {})}
    en = {row["id"]: row["reason"] for row in rule_rows(rules, language("en"), {})}
    assert zh["priority.fast-shipping"] == "{配送方式} 配送 → 紧急"
    assert zh["region"] == "收货省份 {收货省份} 属于 {地区}"
    assert en["priority.fast-shipping"] == "{Shipping method} shipping → urgent"
    assert en["status"] == "order status is {Order status}"
    for row in rule_rows(rules, language("zh-CN"), {}):
        for column in ("tag_label", "when", "holds_while", "reason"):
            if (row["id"], column) == ("priority.urgent-notes", "when"):
                continue  # the words looked for in notes ("urgent", "asap") are data
            shown = row[column].replace("VIP", "")
            assert not re.search(r"[A-Za-z]{3,}", shown), (row["id"], column, row[column])


def test_the_rules_page_lists_the_customer_rules_in_the_readers_language() -> None:
    rules = load_rules(DEFAULT_RULES_FILE)
    zh = {r["id"]: r for r in customer_rule_rows(rules, language("zh-CN"), {"lifecycle.new": 7})}
    en = {r["id"]: r for r in customer_rule_rows(rules, language("en"), {})}

    assert list(zh) == [rule.id for rule in rules.customer_rules]
    assert as_read(zh["lifecycle.lapsed"]["when"]) == "距上次下单天数 > 90"
    assert (zh["lifecycle.new"]["customers"], zh["lifecycle.returning"]["customers"]) == (7, 0)
    category = zh["preference.category"]
    assert (category["tag_label"], category["each"]) == ("偏好：<品类>", "每个品类")
    assert as_read(category["when"]).endswith(
        "该品类消费占比 ≥ 40%)"
    )  # a share, as its reasons show it
    assert en["preference.product"]["tag_label"] == "Prefers product: <SKU>"
    assert as_read(en["behaviour.high-spender"]["when"]) == "Spend in the last 365 days ≥ 20,000"
    for row in zh.values():
        for column in ("tag_label", "each", "when", "reason"):
            assert not re.search(r"[A-Za-z]{3,}", row[column]), (row["id"], column, row[column])


async def test_csv_export_starts_with_a_bom_and_shows_labels() -> None:
    zh = language("zh-CN")
    document = {
        "order_no": "SO-1",
        "order": {"customer": {"name": "欧阳娜娜"}},
        "customer_id": "C-1",
        "status": "pending",
        "amount_cents": 12345,
        "currency": "CNY",
        "region": "east-china",
        "created_at": datetime(2026, 11, 24, tzinfo=UTC),
        "tag_names": ["urgent", "vip"],
    }
    rows_read = rows_of([listed(document)])  # as the read model's export hands them over

    answer = await csv_export(rows_read, header(zh), lambda r: export_row(r, zh), "orders.csv")

    content = await body_of(answer)
    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows[0][0] == "订单号"
    assert rows[1][:6] == ["SO-1", "欧阳娜娜", "待处理", "123.45", "CNY", "华东"]
    assert rows[1][7] == "紧急，VIP客户"


def test_roles_map_onto_the_tag_api_scopes() -> None:
    assert Role.VIEWER.scopes == {Scope.READ}
    assert Scope.TAG in Role.AGENT.scopes
    assert Scope.ADMIN not in Role.AGENT.scopes
    assert Scope.ADMIN in Role.ADMIN.scopes


def test_a_session_secret_is_required_outside_local() -> None:
    with pytest.raises(ValueError, match="ORDERTAG_CONSOLE_SESSION_SECRET"):
        ConsoleSettings(env="production")
    assert ConsoleSettings(env="production", console_session_secret="x" * 40).env == "production"


def test_every_default_description_reads_in_chinese() -> None:
    """The Tags page shows a default tag's or family's description in the reader's language
    (keyed by its text in the rule file, so a rewritten one shows as written)."""
    rules = load_rules(DEFAULT_RULES_FILE)
    described = {t.description for t in rules.tags} | {f.description for f in rules.families}
    chinese = language("zh-CN").labels["descriptions"]
    assert sorted(described - {""} - chinese.keys()) == []
    assert all(re.search(r"[\u4e00-\u9fff]", text) for text in chinese.values())
    english = language("en").labels["descriptions"]
    in_english = [english.get(text, text) for text in described]
    assert [text for text in in_english if re.search(r"[\u4e00-\u9fff]", text)] == []


def test_a_customer_tag_offers_remove_as_the_tag_api_decides_it() -> None:
    rules = load_rules(DEFAULT_RULES_FILE)
    families = {family.name: family for family in rules.families}
    catalog = {
        "生日关怀": CatalogTag(name="生日关怀"),  # the defaults: every role that may tag
        "投诉跟进": CatalogTag(
            name="投诉跟进", permissions=TagPermissions(remove=("manager",))
        ),  # its own
        "key-account": CatalogTag(name="key-account", family="customer"),  # its family's
    }
    tags = [
        {"name": "生日关怀", "source": "manual"},
        {"name": "投诉跟进", "source": "manual"},
        {"name": "key-account", "source": "manual"},
        {"name": "团购", "source": "manual"},  # not in the catalog: the defaults
        {"name": "high-spender", "source": "rule"},  # follows its rule: never by hand
    ]

    def removable(role: Role) -> set[str]:
        session = Session("s", role.value, role, "csrf")
        return removable_tags(tags, session, catalog, families)

    assert removable(Role.VIEWER) == set()
    assert removable(Role.AGENT) == {"生日关怀", "团购"}
    assert removable(Role.MANAGER) == {"生日关怀", "投诉跟进", "key-account", "团购"}
    assert removable(Role.ADMIN) == {"生日关怀", "投诉跟进", "key-account", "团购"}


def test_tags_are_listed_by_their_labels_and_by_name_only_where_two_read_alike() -> None:
    zh = language("zh-CN")
    named = {"product:lamp-2": {"name": "落地灯", "sku": "LAMP-2"}}

    listed = tag_options(
        ["urgent", "region:macao", "product:lamp-2", "vip-gold"],
        lambda name: zh.tag_label(name, named),
    )
    twins = tag_options(["紧急", "urgent"], zh.tag_label)  # a custom tag named as a label

    assert listed == {
        "urgent": "紧急",
        "region:macao": "澳门",
        "product:lamp-2": "偏好商品：落地灯 (LAMP-2)",
        "vip-gold": "vip-gold",
    }
    assert twins == {"紧急": "紧急", "urgent": "紧急 (urgent)"}


def test_a_count_of_one_is_one_however_it_is_written() -> None:
    en = language("en")
    assert [en.t("bulk.selected", n=n) for n in (1, 1.0, "1")] == ["1 order selected"] * 3
    assert en.t("bulk.selected", n="many") == "many orders selected"


def test_the_workbook_holds_numbers_dates_and_text_that_never_runs_as_a_formula() -> None:
    lang = language("en")
    row = {
        "order_no": "SO-1",
        "customer_name": '=HYPERLINK("http://x","hi")',
        "status": "pending",
        "amount": "1234.50",
        "currency": "CNY",
        "created_at": datetime(2026, 11, 28, 23, 30),  # noqa: DTZ001 (naive: MongoDB's, UTC)
        "tag_names": ["urgent"],
    }
    cells = xlsx_row(row, lang, reader_zone("+08:00"))
    bad_amount = xlsx_row({**row, "amount": "n/a"}, lang, reader_zone("+00:00"))
    sheet = load_workbook(io.BytesIO(xlsx_bytes(header(lang), [cells]))).active
    assert sheet is not None

    assert cells[3] == Decimal("1234.50")
    assert cells[6] == datetime(2026, 11, 29, 7, 30)  # noqa: DTZ001 (Excel's: no zone)
    assert bad_amount[3] == "n/a"  # kept as the text it is
    assert sheet["B2"].data_type == "s"  # a name that looks like a formula stays text
    assert sheet["B2"].value == row["customer_name"]
    assert sheet["D2"].number_format == "#,##0.00"


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_text_that_would_run_as_a_formula_is_plain_text_in_a_csv_for_excel(text: str) -> None:
    line = csv_line(["SO-1", text, 12], for_spreadsheets=True)
    assert next(csv.reader([line]))[1] == "'" + text
    assert next(csv.reader([csv_line(["SO-1", text])]))[1] == text  # a program's: as it is
