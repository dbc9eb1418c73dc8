"""Provinces of China mapped to the seven geographic regions used in sales reporting.

Names are matched without the administrative suffix (省, 市, 自治区, ...), in Chinese or pinyin.
"""

import functools

REGION_BY_PROVINCE: dict[str, str] = {}

_REGIONS: dict[str, list[tuple[str, str]]] = {
    "north-china": [
        ("北京", "beijing"),
        ("天津", "tianjin"),
        ("河北", "hebei"),
        ("山西", "shanxi"),
        ("内蒙古", "inner mongolia"),
    ],
    "northeast-china": [("辽宁", "liaoning"), ("吉林", "jilin"), ("黑龙江", "heilongjiang")],
    "east-china": [
        ("上海", "shanghai"),
        ("江苏", "jiangsu"),
        ("浙江", "zhejiang"),
        ("安徽", "anhui"),
        ("福建", "fujian"),
        ("江西", "jiangxi"),
        ("山东", "shandong"),
    ],
    "central-china": [("河南", "henan"), ("湖北", "hubei"), ("湖南", "hunan")],
    "south-china": [("广东", "guangdong"), ("广西", "guangxi"), ("海南", "hainan")],
    "southwest-china": [
        ("重庆", "chongqing"),
        ("四川", "sichuan"),
        ("贵州", "guizhou"),
        ("云南", "yunnan"),
        ("西藏", "tibet"),
    ],
    "northwest-china": [
        ("陕西", "shaanxi"),
        ("甘肃", "gansu"),
        ("青海", "qinghai"),
        ("宁夏", "ningxia"),
        ("新疆", "xinjiang"),
    ],
    "hong-kong": [("香港", "hong kong")],
    "macao": [("澳门", "macao"), ("澳門", "macau")],
    "taiwan": [("台湾", "taiwan"), ("臺灣", "taiwan province")],
}
for _region, _names in _REGIONS.items():
    for _chinese, _pinyin in _names:
        REGION_BY_PROVINCE[_chinese] = _region
        REGION_BY_PROVINCE[_pinyin] = _region

_SUFFIXES = (
    "维吾尔自治区",
    "壮族自治区",
    "回族自治区",
    "特别行政区",
    "自治区",
    "省",
    "市",
    " province",
    " municipality",
    " sar",
)


def region_of(province: str | None) -> str | None:
    """``"浙江省"`` → ``"east-china"``; unknown or missing → ``None``."""
    if not province:
        return None
    return _region_of(province)


@functools.lru_cache(maxsize=4096)  # a few dozen spellings cover nearly every order
def _region_of(province: str) -> str | None:
    name = province.strip().lower()
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)].strip()
            break
    return REGION_BY_PROVINCE.get(name)
