"""Request and answer bodies of the Tag API (validated at the boundary, documented in OpenAPI)."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from services.tagger.errors import Invalid
from services.tagger.manual import ManualChange
from services.tagger.queries import OrderFilter
from services.tagger.rules.schema import TAG_NAME, CatalogTag, Label, Language, TagPermissions
from services.tagger.tag_names import nfkc

ORDER_NO = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
COLOUR = r"^#[0-9a-fA-F]{6}$"
FAMILY = r"^[a-z][a-z0-9_-]{0,31}$"  # as a family is named in the rule file


def _nfkc(value: object) -> object:
    return nfkc(value) if isinstance(value, str) else value


# a tag name as sent: NFKC first (full-width "ｖｉｐ" is "vip"), then the pattern
# (the validator after the constraints: it runs first, and the schema keeps the pattern)
TagNameIn = Annotated[
    str, Field(pattern=TAG_NAME, examples=["gift-wrap", "家居爱好者"]), BeforeValidator(_nfkc)
]
LabelIn = Annotated[Label, BeforeValidator(_nfkc)]
Labels = Annotated[
    dict[Language, LabelIn],
    Field(description="display label per language", examples=[{"zh-CN": "礼品包装"}]),
]
CONFIRM_DUPLICATE = Field(
    default=False,
    description="keep a name or label that nearly equals an existing tag's (refused with 409 "
    "naming that tag otherwise)",
)


class _Body(BaseModel):
    """Bodies as documented: no unknown fields, no coercion (``0`` is not ``false``)."""

    model_config = ConfigDict(extra="forbid", strict=True)


# a change names at least one tag to add or to remove (documented, so generated clients know)
AT_LEAST_ONE_TAG: dict[str, Any] = {
    "anyOf": [
        {"required": ["add"], "properties": {"add": {"minItems": 1}}},
        {"required": ["remove"], "properties": {"remove": {"minItems": 1}}},
    ]
}


class TagChangeIn(BaseModel):
    model_config = ConfigDict(strict=True, json_schema_extra=AT_LEAST_ONE_TAG)

    add: list[TagNameIn] = Field(default_factory=list, max_length=20)
    remove: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20
    )
    reason: Annotated[str, Field(max_length=300)] = "changed by hand"

    def as_change(self, who: str) -> ManualChange:
        if not self.add and not self.remove:
            raise Invalid(
                "add",
                "give at least one tag to add or remove",
                detail="add or remove: give at least one tag",
            )
        return ManualChange(tuple(self.add), tuple(self.remove), who, self.reason)


class BulkTagChangeIn(TagChangeIn):
    order_nos: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=1000
    )


class FilterTagChangeIn(TagChangeIn):
    filter: OrderFilter
    confirm_count: int | None = Field(
        default=None, ge=0, description="the count a dry run answered; without it, nothing changes"
    )


class CatalogTagIn(_Body):
    name: TagNameIn
    family: Annotated[str, Field(pattern=FAMILY)] | None = None
    description: Annotated[str, Field(max_length=300)] = ""
    colour: Annotated[str, Field(pattern=COLOUR)] = "#6b7280"
    active: bool = True
    labels: Labels = Field(default_factory=dict)
    permissions: TagPermissions | None = None
    confirm_duplicate: bool = CONFIRM_DUPLICATE

    def as_tag(self) -> CatalogTag:
        return CatalogTag.model_validate(self.model_dump(exclude={"confirm_duplicate"}))


class CatalogTagPatch(_Body):
    """Only the fields sent change (read with ``exclude_unset``); at least one of them is sent
    (``confirm_duplicate`` alone changes nothing)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "anyOf": [
                {"required": [field]}
                for field in ("description", "colour", "active", "labels", "permissions")
            ]
        },
    )

    description: Annotated[str, Field(max_length=300)] = None  # type: ignore[assignment]
    colour: Annotated[str, Field(pattern=COLOUR)] = None  # type: ignore[assignment]
    active: bool = None  # type: ignore[assignment]
    labels: Labels = None  # type: ignore[assignment]  # replaces every label
    permissions: TagPermissions = None  # type: ignore[assignment]
    confirm_duplicate: bool = CONFIRM_DUPLICATE

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude={"confirm_duplicate"})


class RenameIn(_Body):
    new_name: TagNameIn
    confirm_duplicate: bool = CONFIRM_DUPLICATE


class MergeIn(_Body):
    into: TagNameIn


class ChangeOutcome(BaseModel):
    order_no: str
    outcome: str = Field(description="changed or unchanged")


class BulkOutcome(BaseModel):
    outcomes: dict[str, str] = Field(
        description="per order number: changed, unchanged, not_found or `refused: why`"
    )
    changed: int


class DryRunOut(BaseModel):
    dry_run: bool = True
    would_touch: int
    confirm: str


class JobOut(BaseModel):
    job_id: str
    orders: int
    status: str = "running"


class FilterJobOut(BaseModel):
    job_id: str
    would_touch: int
    status: str = "running"


class OrderPageOut(BaseModel):
    orders: list[dict[str, Any]]
    next_cursor: str | None


class CatalogTagOut(BaseModel):
    name: str
    family: str | None
    description: str
    colour: str
    active: bool
    labels: dict[Language, str] = Field(description="display label per language")
    permissions: TagPermissions = Field(
        description="who may add or remove it by hand: the tag's own, else its family's, "
        "else the defaults"
    )
    on_customers: bool = Field(
        False, description="only customer rules give it: it sits on customers, not on orders"
    )
    in_catalog: bool = Field(
        True,
        description="the catalog stores it (an admin made it, or labelled a tag the rules "
        "name); false: a tag the rules name from a fact (status:pending, named_by_rules), "
        "listed so it can be labelled, or, with free tags allowed, a free tag in use "
        "(named_by_rules false), listed so filters and removals can pick it",
    )
    named_by_rules: bool = Field(
        False,
        description="the rules name it from the data (a prefix such as status: or prefers:): "
        "only they set it, so adding it by hand is refused (422) whether the catalog stores it "
        "or not; removing it by hand follows its permissions (remove, remove_rule_given)",
    )


class CatalogUsageOut(CatalogTagOut):
    orders: int | None = Field(None, description="orders carrying the tag (null: usage=false)")
    customers: int | None = Field(
        None, description="customers carrying the tag (customer rules' tags; null: usage=false)"
    )
    counted_at: datetime | None = Field(
        None, description="when the orders and customers were counted (null: usage=false)"
    )


class LikelyDuplicatesOut(BaseModel):
    tags: tuple[str, str] = Field(description="two catalog tags, in name order")
    why: str = Field(description="which spellings nearly equal each other")


class UnusedOut(BaseModel):
    days: int
    unused: list[str]
