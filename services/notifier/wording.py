"""The words of chat and e-mail alerts in one language: severities, alert kinds and tags by the
console's display labels (``services/console/labels``), the few fixed words by its messages.

English keeps the machine names (they are English words already, and receivers' filters and
existing robots' keyword checks match on them); Chinese uses the labels staff know (紧急, VIP客户).
"""

from dataclasses import dataclass
from functools import cache

from services.console.i18n import Language, language
from shared.events import Alert

WORDS = {
    "en": {
        "escalated": "ESCALATED: ",
        "resolved": "RESOLVED: ",
        "updated": "UPDATED: ",
        "digest": "{n} ordertag alerts",
        "order": "order",
        "customer": "customer",
        "tags": "tags",
        "why": "why",
        "no_tier": "regular",
    },
    "zh-CN": {
        "escalated": "【升级】",
        "resolved": "【已解决】",
        "updated": "【更新】",
        "digest": "{n} 条 ordertag 告警",
        "order": "订单",
        "customer": "客户",
        "tags": "标签",
        "why": "原因",
        "no_tier": "常规",
    },
}


@dataclass(frozen=True)
class Wording:
    code: str
    labels: Language

    def word(self, key: str, **values: object) -> str:
        return WORDS[self.code][key].format(**values)

    def severity(self, alert: Alert) -> str:
        if self.code == "en":
            return alert.severity.value
        return self.labels.t(f"alerts.severity.{alert.severity.value}")

    def tag(self, name: str) -> str:
        return name if self.code == "en" else self.labels.tag_label(name)

    def kind(self, alert: Alert) -> str:
        return self.tag(alert.kind.value)

    def tier(self, alert: Alert) -> str:
        return self.tag(alert.customer_tier) if alert.customer_tier else self.word("no_tier")


@cache
def wording(code: str) -> Wording:
    return Wording(code, language(code))
