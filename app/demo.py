"""Demo data (issue 3, item 6): one province's season of the campaign, generated deterministically.

``load_demo(conn)`` writes, into the database behind a SQLAlchemy ``AsyncConnection`` and inside
the transaction the caller holds, a realistic data set for Zhejiang (330000):

- ``size`` producers (default 3,000) spread over all of the province's counties (the region table),
  in the ten key categories and their sub-products (the product_category table), clustered the way
  the province's industry is (cables in 乐清, helmets and couplers in 永康, panels in 安吉 ...);
  valid GB 32100 codes (county code in positions 3-8, a GB 11714 organisation code, the check
  character from ``app.services.uscc.make``); Chinese names, legal representatives, addresses;
  sizes mostly small, some medium, few large;
- production licences for most (national ``XK05-001-00018`` or provincial ``（浙）XK05-001-00018``),
  some expired, a few suspended, some renewed; about 5-8 % of producers without a valid licence
  (most of them unlicensed workshops found by the sweep); ``enterprise.licensed`` is true exactly
  when the enterprise holds a licence that is ``valid`` and not past ``expires_on``;
- one season (the 120 days before ``as_of``) of inspections: a sweep of nearly every producer,
  routine checks, annual reviews of licensed producers, complaint checks and supervision spot
  checks whose samples fail at 8-12 % (large producers far less), the five checks consistent with
  the conclusion, two officers each;
- a few penalty cases in ``registered`` state, each linked both ways with the failing inspection
  that opened it;
- one user per role and level (national 000000, provincial 330000, city 330100, county 330106 x
  inspector / officer / leader / admin) with random passwords, returned (to be printed once) and
  stored hashed with ``app.security.hash_password``.

Everything but the passwords follows from ``seed``, ``size`` and ``as_of`` (default: today in
China): the same arguments give the same ids, codes, names and records. Rows are written with
PostgreSQL COPY (asyncpg ``copy_records_to_table``), so a load takes about a second plus the
password hashing. Generated rows bypass the audit log: no per-row audit events are written, only one
``demo.load`` event that records what was loaded (skipped when ``audit_event=False``).
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import json
import random
import secrets
import time as _time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app import security
from app.services import uscc as uscc_codes

DEFAULT_SEED = 20070831  # the date of the 2007 notice
DEFAULT_SIZE = 3000
PROVINCE = "330000"
PROVINCE_ABBR = "浙"
SEASON_DAYS = 120
CST = timezone(timedelta(hours=8), "CST")  # China has one time zone and no daylight saving

# The demo users: one per role at each level, named <bureau>.<role>.
USER_BUREAUS: tuple[tuple[str, str, str], ...] = (
    ("000000", "national", "国家质检总局"),
    ("330000", "zhejiang", "浙江省质量技术监督局"),
    ("330100", "hangzhou", "杭州市质量技术监督局"),
    ("330106", "xihu", "杭州市西湖区质量技术监督局"),
)
ROLES: tuple[str, ...] = ("inspector", "officer", "leader", "admin")

# Provincial licence numbers start with the province's abbreviation in full-width parentheses.
LPAREN, RPAREN = "\uff08", "\uff09"
# GB/T 2260 province prefix -> the abbreviation a provincial licence number starts with, (浙)XK...
PROVINCE_ABBRS: dict[str, str] = {
    "11": "京", "12": "津", "13": "冀", "14": "晋", "15": "蒙", "21": "辽", "22": "吉", "23": "黑",
    "31": "沪", "32": "苏", "33": "浙", "34": "皖", "35": "闽", "36": "赣", "37": "鲁", "41": "豫",
    "42": "鄂", "43": "湘", "44": "粤", "45": "桂", "46": "琼", "50": "渝", "51": "川", "52": "黔",
    "53": "滇", "54": "藏", "61": "陕", "62": "甘", "63": "青", "64": "宁", "65": "新",
}

# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------

SURNAMES = ("陈 王 张 李 林 吴 徐 周 金 黄 叶 朱 杨 应 胡 刘 郑 蒋 沈 方 何 钱 潘 许 楼 俞 章 吕 孙 "
            "赵 郭 马 邵 丁 施 汪 高 宋 罗 谢 董 余 程 毛 姚 傅 蔡 范 卢 严 袁 杜 钟 江 戴 鲍 葛 洪 夏").split()
GIVEN_NAMES = ("伟 芳 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 霞 平 刚 斌 浩 宇 鹏 飞 俊 峰 华 辉 "
               "红 玲 萍 燕 雪 琳 倩 婷 慧 颖 晨 阳 凯 健 亮 波 秀英 秀兰 桂英 建华 建国 志强 海燕 晓东 "
               "国平 立新 建军 国强 永明 海波 丽华 美玲 伟民 文杰 晓燕 建平 春燕 小龙 志华 宏伟 雅琴 "
               "振华 卫东 佳怡 子涵 浩然 欣怡 宇航 思远 嘉怡").split()
# Trade names (字号): generic, no real brand intended.
BRAND_WORDS = ("宏达 华盛 金鑫 永泰 恒通 天成 瑞丰 鸿运 东方 中恒 新力 华通 立新 信达 聚力 三鑫 福达 兴旺 "
               "康达 明辉 顺发 永安 安泰 博远 大成 鼎盛 东升 飞达 丰源 国泰 浩宇 和顺 恒昌 弘毅 华宇 环宇 "
               "佳和 建业 金达 锦程 骏马 凯达 蓝天 利民 联创 隆兴 茂源 南方 鹏程 前进 荣盛 瑞安 森达 盛世 "
               "泰和 腾飞 通达 万利 伟业 祥和 鑫源 星光 亚泰 耀华 益民 银河 永盛 裕丰 远航 振兴 志诚 中天 "
               "众诚 卓越 金狮 华光 新星 协力 长兴 富华 海亮 金盾 三联 天宇 宏峰 正阳").split()
# Words naming the trade in an enterprise name, per top-level category and per sub-product name.
TRADE_WORDS: dict[str, tuple[str, ...]] = {
    "01": ("安全防护用品", "劳保用品", "防护用品", "安全用品"),
    "02": ("钢铁", "特钢", "钢业", "金属材料"),
    "03": ("木业", "板业", "人造板", "装饰材料"),
    "04": ("扣件", "建筑器材", "脚手架", "五金"),
    "05": ("电线电缆", "电缆", "线缆", "电工材料"),
    "06": ("燃气具", "厨具", "燃气设备", "厨房电器"),
    "07": ("化工", "精细化工", "化学", "新材料"),
    "08": ("电器", "电热毯", "家用电器", "电子电器"),
    "09": ("防爆电气", "防爆电器", "防爆科技", "电机"),
    "10": ("农机", "农资", "机械", "农业科技"),
}
TRADE_BY_PRODUCT: dict[str, tuple[str, ...]] = {
    "摩托车乘员头盔": ("头盔", "车业用品", "安全防护用品"),
    "安全帽": ("安全帽", "劳保用品", "塑料制品"),
    "工业炸药": ("民爆器材", "化工"),
    "烟花爆竹": ("烟花爆竹", "烟花"),
    "农药": ("农化", "生物科技", "农药"),
    "水泵": ("泵业", "水泵", "机电"),
    "化肥": ("肥业", "化肥", "农资"),
    "燃气热水器": ("热水器", "燃气具", "厨卫电器"),
    "防爆电机": ("电机", "防爆电机", "防爆电气"),
    "防爆灯具": ("照明", "防爆灯具", "防爆电气"),
}
CATEGORY_WEIGHTS: dict[str, float] = {
    "01": 0.9, "02": 0.4, "03": 1.0, "04": 0.6, "05": 1.3, "06": 0.8, "07": 1.2, "08": 0.5, "09": 0.7, "10": 1.4,
}
# Industrial clusters of the province: these counties make these categories far more often.
CLUSTERS: dict[str, tuple[str, ...]] = {
    "330382": ("05", "09"),  # 乐清: low-voltage electrical, cables
    "330784": ("01", "04"),  # 永康: hardware, helmets, couplers
    "330523": ("03",), "330522": ("03",), "330421": ("03",), "330483": ("03",),  # 安吉 长兴 嘉善 桐乡: panels
    "330604": ("07",), "330803": ("07",), "331082": ("07",),  # 上虞 衢江 临海: chemicals
    "331081": ("10",), "330281": ("10",), "330381": ("10",),  # 温岭 余姚 瑞安: pumps, farm machinery
    "330282": ("06", "08"),  # 慈溪: household appliances
    "330681": ("02",),  # 诸暨: steel
}
CITY_WEIGHTS: dict[str, float] = {
    "3301": 1.4, "3302": 1.3, "3303": 1.3, "3304": 1.0, "3305": 0.8, "3306": 1.0, "3307": 1.1,
    "3308": 0.5, "3309": 0.3, "3310": 1.1, "3311": 0.4,
}
CITY_CENTRES: dict[str, tuple[float, float]] = {
    "3301": (30.27, 120.15), "3302": (29.87, 121.55), "3303": (28.00, 120.67), "3304": (30.75, 120.76),
    "3305": (30.89, 120.09), "3306": (30.00, 120.58), "3307": (29.08, 119.65), "3308": (28.94, 118.87),
    "3309": (30.00, 122.20), "3310": (28.66, 121.42), "3311": (28.45, 119.92),
}
ZONES = ("经济开发区", "工业园区", "高新技术产业园区", "工业功能区", "", "", "", "")
ROAD_WORDS = ("工业", "兴业", "创业", "科技", "人民", "解放", "建设", "中山", "环城", "东风", "新华", "开发",
              "振兴", "富民", "滨江", "江南", "东海", "文化", "迎宾", "金港", "纬一", "纬二", "纬三", "经一",
              "经二", "经五", "青年", "通港", "园区", "创新")
ROAD_SUFFIXES = ("路", "路", "路", "大道", "街")

# Test standards and typical failing items of spot-check samples.
STANDARDS: dict[str, str] = {
    "安全帽": "GB 2811-2019", "摩托车乘员头盔": "GB 811-2022", "安全带": "GB 6095-2021", "防护服": "GB 8965.1-2020",
    "热轧带肋钢筋": "GB/T 1499.2-2018", "余热处理钢筋": "GB/T 13014-2013",
    "胶合板": "GB/T 9846-2015", "中密度纤维板": "GB/T 11718-2021", "刨花板": "GB/T 4897-2015",
    "细木工板": "GB/T 5849-2016",
    "直角扣件": "GB 15831-2006", "旋转扣件": "GB 15831-2006", "对接扣件": "GB 15831-2006",
    "额定电压450/750V及以下聚氯乙烯绝缘电缆": "GB/T 5023.3-2008", "电力电缆": "GB/T 12706.1-2020",
    "架空绞线": "GB/T 1179-2017",
    "家用燃气灶具": "GB 16410-2020", "燃气热水器": "GB 6932-2015", "燃气调压器": "GB 35844-2018",
    "危险化学品有机产品": "GB 15258-2009", "危险化学品无机产品": "GB 15258-2009", "工业炸药": "GB 28286-2012",
    "烟花爆竹": "GB 10631-2013",
    "电热毯": "GB 4706.8-2008",
    "防爆电机": "GB/T 3836.2-2021", "防爆灯具": "GB/T 3836.2-2021", "防爆开关": "GB/T 3836.2-2021",
    "饲料粉碎机": "GB 10395.1-2009", "农药": "GB/T 1604-2017", "脱粒机": "GB 10395.7-2006",
    "水泵": "GB/T 13006-2013", "化肥": "GB/T 15063-2020",
}
FAILED_ITEMS: dict[str, tuple[str, ...]] = {
    "01": ("冲击吸收性能", "耐穿刺性能", "下颏带强度", "佩戴高度", "标识"),
    "02": ("屈服强度", "抗拉强度", "最大力总延伸率", "重量偏差", "弯曲性能"),
    "03": ("甲醛释放量", "含水率", "静曲强度", "胶合强度", "内结合强度"),
    "04": ("抗滑性能", "抗破坏性能", "扭转刚度性能", "抗拉性能", "外观"),
    "05": ("导体电阻", "绝缘厚度", "护套厚度", "绝缘老化前抗张强度", "不延燃试验", "标志"),
    "06": ("熄火保护装置", "燃烧工况（CO含量）", "气密性", "热效率", "安全装置"),
    "07": ("主含量", "水分", "包装及标志", "酸度", "不溶物"),
    "08": ("对触及带电部件的防护", "发热", "结构", "标志和说明", "泄漏电流"),
    "09": ("隔爆接合面参数", "外壳防护等级", "防爆标志", "温度组别", "电气间隙"),
    "10": ("总养分", "水溶性磷占有效磷百分率", "有效成分含量", "安全防护", "使用说明书"),
}
LABS = ("浙江省质量科学研究院", "浙江方圆检测集团股份有限公司", "杭州市质量技术监督检测院",
        "宁波市产品食品质量检验研究院", "温州市质量技术检测科学研究院")
CATEGORY_LABS: dict[str, tuple[str, ...]] = {
    "03": ("国家人造板及木制品质量检验检测中心（浙江）",), "05": ("国家电线电缆产品质量检验检测中心（浙江）",),
    "07": ("浙江省化工产品质量检验站有限公司",), "09": ("国家防爆电气产品质量检验检测中心（浙江）",),
    "10": ("浙江省农业机械试验鉴定推广总站",),
}
CHECK_KEYS = ("licensed", "conditions_met", "standard_production", "no_safety_hazard", "no_fraud")
CHECK_NOTES: dict[str, tuple[str, ...]] = {
    "conditions_met": ("主要生产设备缺失", "检验人员未持证上岗", "出厂检验设备不全", "关键工序未按许可条件控制",
                       "生产场所已迁址未申报"),
    "standard_production": ("原材料进货查验记录缺失", "使用不合格原材料", "未按标准组织生产", "出厂检验记录不全"),
    "no_safety_hazard": ("成品存在安全隐患", "库存产品存在安全隐患", "产品标识不全"),
    "no_fraud": ("以次充好", "冒用他人厂名厂址", "伪造许可证编号", "以不合格产品冒充合格产品"),
}
LICENCE_FAIL_NOTE = {"none": "未取得生产许可证", "expired_only": "生产许可证已过期",
                     "suspended": "生产许可证暂扣期间仍在生产"}
NOTES_COMPLIANT: tuple[str | None, ...] = (None, None, None, "未发现问题", "企业已签字确认")
NOTES_ISSUES = ("责令限期整改", "责令限期整改，复查", "已责令停止生产", "已封存相关产品")
# Licences of these categories are issued by the national bureau, the others by the province.
NATIONAL_LICENCE_CATEGORIES = frozenset({"02", "05", "07", "09"})


# ---------------------------------------------------------------------------------------------
# Small generators shared with bench/generate_large.py
# ---------------------------------------------------------------------------------------------

_ORG_VALUE = {c: (int(c) if c.isdigit() else ord(c) - 55) for c in uscc_codes.CHARSET}
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
PASSWORD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"  # noqa: S105 - an alphabet


def org_code_check(first8: str) -> str:
    """GB 11714 check character of an organisation code (the 9th character)."""
    c = 11 - sum(_ORG_VALUE[ch] * w for ch, w in zip(first8, _ORG_WEIGHTS, strict=True)) % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def make_uscc(rng: random.Random, county: str, *, individual: bool = False) -> str:
    """A valid GB 32100 code: 91 (enterprise) or 92 (individual business), the county, a GB 11714
    organisation code (new ``MA...`` style or old all-digit style) and the GB 32100 check character."""
    if rng.random() < 0.6:
        body = "MA" + "".join(rng.choices(uscc_codes.CHARSET[1:], k=6))
    else:
        body = str(rng.randrange(10_000_000, 100_000_000))
    org = body + org_code_check(body)
    return uscc_codes.make(("92" if individual else "91") + county + org)


def new_password(length: int = 16) -> str:
    """A random password of letters and digits (easy to copy from a terminal)."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def person_name(rng: random.Random) -> str:
    i = min(int(rng.expovariate(1 / 9)), len(SURNAMES) - 1)  # common surnames first
    return SURNAMES[i] + rng.choice(GIVEN_NAMES)


def new_uuid(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID drawn from ``rng`` (deterministic)."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def licence_number(category: str, unit: int, serial: int, province: str | None = None) -> str:
    """``XK05-001-00018`` (national) or ``（浙）XK05-001-00018`` (provincial; full-width parentheses)."""
    number = f"XK{category}-{unit:03d}-{serial:05d}"
    return f"{LPAREN}{PROVINCE_ABBRS[province[:2]]}{RPAREN}{number}" if province else number


def checks_json(failed: dict[str, str]) -> str:
    """The five checks as stored: ``{"licensed": {"ok": true, "note": null}, ...}``."""
    return json.dumps({k: {"ok": k not in failed, "note": failed.get(k)} for k in CHECK_KEYS}, ensure_ascii=False)


def add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def place_name(county_name: str, city_name: str) -> str:
    """The place an enterprise name starts with: a county-level city or county by its own name
    (乐清, 安吉), a city district by its city (杭州)."""
    if county_name.endswith("自治县"):
        return county_name[:2]
    if county_name.endswith(("市", "县")) and len(county_name) >= 3:
        return county_name[:-1]
    return city_name[:-1] if city_name.endswith("市") else city_name


# ---------------------------------------------------------------------------------------------
# The data set
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class County:
    code: str
    name: str
    full_name: str
    city_code: str
    city_name: str


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    products: tuple[tuple[str, str], ...]  # (code, name) of its sub-products


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    display_name: str
    region_code: str
    bureau: str
    roles: tuple[str, ...]


@dataclass
class DemoData:
    """Rows per table, in COPY column order."""

    enterprises: list[tuple[Any, ...]] = field(default_factory=list)
    licenses: list[tuple[Any, ...]] = field(default_factory=list)
    inspections: list[tuple[Any, ...]] = field(default_factory=list)
    cases: list[tuple[Any, ...]] = field(default_factory=list)
    recalls: list[tuple[Any, ...]] = field(default_factory=list)
    recall_progress: list[tuple[Any, ...]] = field(default_factory=list)
    users: list[DemoUser] = field(default_factory=list)
    user_ids: list[uuid.UUID] = field(default_factory=list)


@dataclass
class DemoResult:
    enterprises: int
    licenses: int
    inspections: int
    cases: int
    unlicensed: int
    users: list[DemoUser]
    seconds: float
    as_of: date
    seed: int
    recalls: int = 0

    def summary(self) -> str:
        return (f"demo data: {self.enterprises} enterprises ({self.unlicensed} without a valid licence), "
                f"{self.licenses} licences, {self.inspections} inspections, {self.cases} penalty cases, "
                f"{self.recalls} recalls, "
                f"{len(self.users)} users in {self.seconds:.1f}s (seed {self.seed}, season ending {self.as_of})")


class DemoDataPresent(RuntimeError):
    """The database already holds enterprises of the demo province or the demo users."""


ENTERPRISE_COLUMNS = ("id", "uscc", "name", "legal_representative", "address", "region_code", "size",
                      "category_codes", "licensed", "version", "created_at", "updated_at")
LICENSE_COLUMNS = ("id", "number", "enterprise_id", "region_code", "category_code", "issued_on", "expires_on",
                   "issuer_level", "status", "version", "created_at", "updated_at")
INSPECTION_COLUMNS = ("id", "enterprise_id", "region_code", "kind", "inspected_at", "officers", "location",
                      "checks", "samples", "conclusion", "notes", "case_id", "body_hash", "created_by", "version",
                      "created_at", "updated_at")
CASE_COLUMNS = ("id", "enterprise_id", "inspection_id", "region_code", "bureau_code", "kind", "status",
                "possibly_criminal", "created_by", "version", "created_at", "updated_at", "stage_entered_at",
                "deadline")
CASE_REGISTERED_DAYS = 7  # the default time limit of the registered stage (Settings.case_stage_days)
RECALL_COLUMNS = ("id", "enterprise_id", "case_id", "inspection_id", "region_code", "product", "batches", "hazard",
                  "mode", "units_made", "units_sold", "distribution", "units_recalled", "deadline", "status",
                  "completed_at", "version", "created_at", "updated_at")
RECALL_PROGRESS_COLUMNS = ("id", "recall_id", "region_code", "units_recalled", "as_of", "note", "sold_region",
                           "batch", "created_by", "created_at")
USER_COLUMNS = ("id", "username", "password_hash", "display_name", "region_code", "roles", "active", "version",
                "created_at", "updated_at")


@dataclass
class _Producer:
    id: uuid.UUID
    county: County
    size: str
    category: Category
    products: list[tuple[str, str]]
    scenario: str  # licensed | none | expired_only | suspended
    licensed: bool
    created_at: datetime


class _Generator:
    def __init__(self, counties: Sequence[County], categories: Sequence[Category], *, size: int, seed: int,
                 as_of: date) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - demo data, not security
        self.recall_rng = random.Random(seed + 1)  # noqa: S311 - its own stream: recalls leave the rest as it was
        self.counties = list(counties)
        self.categories = list(categories)
        self.size = size
        self.as_of = as_of
        self.season_start = as_of - timedelta(days=SEASON_DAYS)
        self.data = DemoData()
        self.usccs: set[str] = set()
        self.serials: dict[tuple[str, str], int] = {}
        rng = self.rng
        # Industrial intensity per county (log-normal), by city, a cluster bonus, the demo county doubled.
        self.county_weights: list[float] = []
        for c in self.counties:
            w = rng.lognormvariate(0, 0.5) * CITY_WEIGHTS.get(c.code[:4], 0.7)
            self.county_weights.append(w * (1.5 if c.code in CLUSTERS else 1.0) * (2.0 if c.code == "330106" else 1.0))
        self.county_cum = list(_accumulate(self.county_weights))
        self.officers = {c.code: [person_name(rng) for _ in range(8)] for c in self.counties}

    # -- helpers ---------------------------------------------------------------------------------
    def _category_for(self, county: County) -> Category:
        boost = CLUSTERS.get(county.code, ())
        weights = [CATEGORY_WEIGHTS.get(c.code, 1.0) * (8.0 if c.code in boost else 1.0) for c in self.categories]
        return self.rng.choices(self.categories, weights=weights)[0]

    def _workday_time(self, start: date, end: date) -> datetime:
        rng = self.rng
        span = max((end - start).days, 0)
        d = start + timedelta(days=rng.randint(0, span))
        for _ in range(5):  # inspections happen on working days
            if d.weekday() < 5:
                break
            d = start + timedelta(days=rng.randint(0, span))
        minutes = rng.randint(8 * 60 + 30, 17 * 60)
        return datetime.combine(d, time(minutes // 60, minutes % 60), CST)

    def _address(self, county: County) -> str:
        rng = self.rng
        road = rng.choice(ROAD_WORDS) + rng.choice(ROAD_SUFFIXES)
        return f"{county.full_name}{rng.choice(ZONES)}{road}{rng.randint(1, 999)}号"

    def _name(self, p: _Producer, individual: bool) -> str:
        rng = self.rng
        place = place_name(p.county.name, p.county.city_name)
        trade = rng.choice(TRADE_BY_PRODUCT.get(p.products[0][1], TRADE_WORDS.get(p.category.code, ("制造",))))
        brand = rng.choice(BRAND_WORDS)
        if individual:
            return f"{place}{brand}{trade}{rng.choice(('厂', '加工厂', '加工场', '经营部'))}"
        if p.size == "large":
            suffix = rng.choice(("股份有限公司", "集团有限公司", "有限公司"))
        else:
            suffix = rng.choice(("有限公司",) * 8 + ("有限责任公司", "实业有限公司"))
        return f"{place}{brand}{trade}{suffix}"

    def _licence(self, p: _Producer, category: str, issued: date, status: str) -> None:
        national = category in NATIONAL_LICENCE_CATEGORIES
        key = ("national" if national else PROVINCE, category)
        self.serials[key] = n = self.serials.get(key, 0) + 1
        unit = int(p.county.code[2:4])  # the issuing unit: one per city
        number = licence_number(category, unit, n, None if national else PROVINCE)
        expires = add_years(issued, 5) - timedelta(days=1)
        created = datetime.combine(issued, time(10, 0), CST)
        self.data.licenses.append((
            new_uuid(self.rng), number, p.id, p.county.code, category, issued, expires,
            "national" if national else "provincial", status, 1, created, created))

    # -- producers and licences -----------------------------------------------------------------
    def producers(self) -> list[_Producer]:
        rng, out = self.rng, []
        history_start = self.as_of - timedelta(days=3 * 365)
        for i in range(self.size):
            county = self.counties[bisect.bisect(self.county_cum, rng.random() * self.county_cum[-1])]
            category = self.categories[i] if i < len(self.categories) else self._category_for(county)
            r = rng.random()
            size = "large" if r < 0.04 else "medium" if r < 0.20 else "small"
            k = 1 if rng.random() < 0.7 or len(category.products) == 1 else 2
            products = sorted(rng.sample(list(category.products), k=min(k, len(category.products))))
            r = rng.random()
            if size == "large":
                scenario = "licensed"
            elif size == "medium":
                scenario = "none" if r < 0.015 else "expired_only" if r < 0.025 else "licensed"
            else:
                scenario = ("none" if r < 0.055 else "expired_only" if r < 0.075 else
                            "suspended" if r < 0.079 else "licensed")
            created = datetime.combine(history_start + timedelta(days=rng.randint(0, 3 * 365 - SEASON_DAYS - 5)),
                                       time(rng.randint(8, 17), rng.randint(0, 59)), CST)
            p = _Producer(id=new_uuid(rng), county=county, size=size, category=category, products=products,
                          scenario=scenario, licensed=scenario == "licensed", created_at=created)
            out.append(p)
        return out

    def enterprise_and_licences(self, p: _Producer) -> None:
        rng = self.rng
        individual = p.scenario == "none" and rng.random() < 0.4
        code = make_uscc(rng, p.county.code, individual=individual)
        while code in self.usccs:
            code = make_uscc(rng, p.county.code, individual=individual)
        self.usccs.add(code)
        cat = p.category.code
        if p.scenario == "licensed":
            if rng.random() < 0.10:  # renewed: the old licence expired, a new one was issued before it lapsed
                old_issued = self.as_of - timedelta(days=rng.randint(5 * 365 + 30, 5 * 365 + 700))
                self._licence(p, cat, old_issued, "expired")
                new_issued = add_years(old_issued, 5) - timedelta(days=rng.randint(10, 60))
                self._licence(p, cat, new_issued, "valid")
            else:  # expiring between next month and five years from now
                issued = self.as_of - timedelta(days=rng.randint(30, 5 * 365 - 30))
                self._licence(p, cat, issued, "valid")
            if rng.random() < 0.06:  # a second licence in another category
                other = rng.choice([c for c in self.categories if c.code != cat])
                self._licence(p, other.code, self.as_of - timedelta(days=rng.randint(60, 1500)), "valid")
        elif p.scenario == "expired_only":  # lapsed before the season began: producing without a licence
            issued = add_years(self.season_start, -5) - timedelta(days=rng.randint(1, 400))
            self._licence(p, cat, issued, "expired")
        elif p.scenario == "suspended":
            self._licence(p, cat, self.as_of - timedelta(days=rng.randint(400, 1500)), "suspended")
        name = self._name(p, individual)
        self.data.enterprises.append((
            p.id, code, name, person_name(rng), self._address(p.county), p.county.code, p.size,
            sorted({cat, *(c for c, _ in p.products)}), p.licensed, 1, p.created_at, p.created_at))

    # -- inspections -----------------------------------------------------------------------------
    def _samples(self, p: _Producer, fail_rate: float) -> list[dict[str, Any]]:
        rng = self.rng
        out = []
        for _ in range(rng.choices((1, 2, 3), weights=(6, 3, 1))[0]):
            product = rng.choice(p.products)[1]
            passed = rng.random() >= fail_rate
            made = self.as_of - timedelta(days=rng.randint(20, 200))
            out.append({
                "product": product, "batch": f"{made:%Y%m%d}-{rng.randint(1, 30):02d}",
                "standard": STANDARDS.get(product), "passed": passed,
                "lab": rng.choice(LABS + CATEGORY_LABS.get(p.category.code, ()) * 3),
                "failed_items": [] if passed else rng.sample(FAILED_ITEMS.get(p.category.code, ("其他",)),
                                                             k=rng.choice((1, 1, 2))),
            })
        return out

    def inspection(self, p: _Producer, kind: str, at: datetime) -> None:
        rng = self.rng
        size_factor = {"small": 1.0, "medium": 0.6, "large": 0.25}[p.size]
        kind_factor = {"complaint": 4.0, "spot_check": 0.5, "annual_review": 1.5}.get(kind, 1.0)
        failed: dict[str, str] = {}
        if not p.licensed:
            failed["licensed"] = LICENCE_FAIL_NOTE[p.scenario]
        base = ({"conditions_met": 0.45, "standard_production": 0.35, "no_safety_hazard": 0.25, "no_fraud": 0.06}
                if not p.licensed else
                {"conditions_met": 0.03, "standard_production": 0.04, "no_safety_hazard": 0.02, "no_fraud": 0.008})
        for key, prob in base.items():
            if rng.random() < min(prob * size_factor * kind_factor, 0.9):
                failed[key] = rng.choice(CHECK_NOTES[key])
        samples: list[dict[str, Any]] = []
        if kind == "spot_check":
            fail_rate = 0.35 if not p.licensed else {"small": 0.12, "medium": 0.08, "large": 0.025}[p.size]
            samples = self._samples(p, fail_rate)
            bad = [s for s in samples if not s["passed"]]
            if bad:
                items = "、".join(dict.fromkeys(i for s in bad for i in s["failed_items"]))
                failed["no_safety_hazard"] = f"抽样检验不合格：{bad[0]['product']}（{items}）"
        conclusion = "issues_found" if failed else "compliant"
        officers = rng.sample(self.officers[p.county.code], 2)
        lat, lng = CITY_CENTRES.get(p.county.code[:4], (29.5, 120.5))
        location = None if rng.random() < 0.1 else {"lat": round(lat + rng.uniform(-0.25, 0.25), 5),
                                                     "lng": round(lng + rng.uniform(-0.25, 0.25), 5)}
        delay = timedelta(minutes=rng.randint(5, 90)) if rng.random() < 0.85 else timedelta(hours=rng.randint(20, 72))
        created = at + delay
        inspection_id = new_uuid(rng)
        case_id = None
        if failed:
            p_case = (0.35 if "no_fraud" in failed else 0.2 if "licensed" in failed else
                      0.12 if samples and any(not s["passed"] for s in samples) else 0.03)
            if rng.random() < p_case:
                case_id = new_uuid(rng)
                kind_of_case = ("counterfeit" if "no_fraud" in failed else
                                "unlicensed_production" if "licensed" in failed else
                                "nonconforming_products" if "no_safety_hazard" in failed else
                                "lowered_conditions" if "conditions_met" in failed else "irregular_production")
                self.data.cases.append((case_id, p.id, inspection_id, p.county.code, p.county.code, kind_of_case,
                                        "registered", False, None, 1, created, created, created,
                                        created + timedelta(days=CASE_REGISTERED_DAYS)))
                bad = [s for s in samples if not s["passed"]]
                if kind_of_case == "nonconforming_products" and bad and self.recall_rng.random() < 0.6:
                    self.recall(p, bad[0], case_id, inspection_id, created)
        if failed:
            notes: str | None = rng.choice(NOTES_ISSUES) + ("；已立案查处" if case_id else "")
        else:
            notes = rng.choice(NOTES_COMPLIANT)
        body = {"enterprise_id": str(p.id), "kind": kind, "inspected_at": at.isoformat(), "officers": officers,
                "location": location, "checks": json.loads(checks_json(failed)), "samples": samples,
                "conclusion": conclusion, "notes": notes}
        body_hash = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        self.data.inspections.append((
            inspection_id, p.id, p.county.code, kind, at, json.dumps(officers, ensure_ascii=False),
            None if location is None else json.dumps(location), checks_json(failed),
            json.dumps(samples, ensure_ascii=False), conclusion, notes, case_id, body_hash, None, 1, created, created))

    def recall(self, p: _Producer, sample: dict[str, Any], case_id: uuid.UUID, inspection_id: uuid.UUID,
               opened: datetime) -> None:
        """An ordered recall of the failed sample's batch, sold in two or three counties of the province,
        with some of it recovered already (reported in one or two progress reports)."""
        rng = self.recall_rng
        made = rng.randint(5, 60) * 100
        sold = int(made * rng.uniform(0.6, 0.95))
        places = rng.sample([c.code for c in self.counties], k=rng.choice((2, 3)))
        cuts = sorted(rng.sample(range(1, sold), k=len(places) - 1))
        shares = [b - a for a, b in zip([0, *cuts], [*cuts, sold], strict=True)]
        distribution = [{"region_code": c, "batch": sample["batch"], "units_sold": n}
                        for c, n in zip(places, shares, strict=True)]
        recalled = 0
        recall_id = new_uuid(rng)
        for entry in distribution:
            got = int(entry["units_sold"] * rng.choice((0.0, 0.3, 0.6, 0.9, 1.0)))
            if got:
                self.data.recall_progress.append((new_uuid(rng), recall_id, p.county.code, got,
                                                  (opened + timedelta(days=rng.randint(1, 20))).date(),
                                                  "经销商退回" if rng.random() < 0.5 else "消费者退货",
                                                  entry["region_code"], sample["batch"], None, opened))
                recalled += got
        deadline = (opened + timedelta(days=30)).date()
        status = ("completed" if recalled == sold else "overdue" if deadline < self.as_of else "open")
        self.data.recalls.append((
            recall_id, p.id, case_id, inspection_id, p.county.code, sample["product"], [sample["batch"]],
            f"监督抽查不合格（{'、'.join(sample['failed_items'])}），存在安全隐患", "ordered", made, sold,
            json.dumps(distribution, ensure_ascii=False), recalled, deadline, status,
            opened if status == "completed" else None, 1, opened, opened))

    def season(self, p: _Producer) -> None:
        rng, start, end = self.rng, self.season_start, self.as_of - timedelta(days=1)
        sweep_end = start + timedelta(days=90)
        if p.scenario == "none" or rng.random() < 0.97:  # the sweep found every unlicensed workshop it lists
            at = self._workday_time(start, sweep_end)
            if p.scenario == "none":  # entered into the archive when the sweep found it
                p.created_at = at - timedelta(minutes=rng.randint(1, 30))
            self.inspection(p, "sweep", at)
        visit_start = max(start, p.created_at.date() + timedelta(days=1))
        for _ in range(rng.choices((0, 1, 2), weights=(62, 30, 8))[0]):
            self.inspection(p, "routine", self._workday_time(visit_start, end))
        if p.licensed and rng.random() < 0.3:
            self.inspection(p, "annual_review", self._workday_time(start + timedelta(days=30), end))
        if rng.random() < (0.03 if p.licensed else 0.08):
            self.inspection(p, "complaint", self._workday_time(visit_start, end))
        spot = {"small": 0.2, "medium": 0.3, "large": 0.45}[p.size] if p.licensed else 0.08
        if rng.random() < spot:
            self.inspection(p, "spot_check", self._workday_time(max(visit_start, start + timedelta(days=20)), end))

    # -- users -------------------------------------------------------------------------------------
    def users(self) -> None:
        rng = self.rng
        for region, prefix, bureau in USER_BUREAUS:
            for role in ROLES:
                self.data.user_ids.append(new_uuid(rng))
                self.data.users.append(DemoUser(
                    username=f"{prefix}.{role}", password=new_password(), display_name=person_name(rng),
                    region_code=region, bureau=bureau, roles=(role,)))

    def build(self) -> DemoData:
        producers = self.producers()
        for p in producers:
            self.season(p)  # may move created_at of unlicensed workshops to their discovery
            self.enterprise_and_licences(p)
        self.users()
        return self.data


def _accumulate(values: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for v in values:
        total += v
        out.append(total)
    return out


def build(counties: Sequence[County], categories: Sequence[Category], *, size: int = DEFAULT_SIZE,
          seed: int = DEFAULT_SEED, as_of: date | None = None) -> DemoData:
    """Generate the rows (no database access); deterministic for the same arguments except passwords."""
    if size < 1:
        raise ValueError("size must be at least 1")
    return _Generator(counties, categories, size=size, seed=seed, as_of=as_of or today()).build()


def today() -> date:
    return datetime.now(CST).date()


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

async def read_reference(conn: AsyncConnection, province: str = PROVINCE) -> tuple[list[County], list[Category]]:
    """The province's counties (with their cities) and the key categories with their sub-products."""
    rows = (await conn.execute(text(
        "SELECT r.code, r.name, r.full_name, r.level, r.parent_code FROM region r "
        "WHERE r.code LIKE :p ORDER BY r.code"), {"p": province[:2] + "%"})).all()
    names = {r.code: r.name for r in rows}
    counties = [County(code=r.code, name=r.name, full_name=r.full_name, city_code=r.parent_code,
                       city_name=names.get(r.parent_code, ""))
                for r in rows if r.level == "county"]
    if not counties:
        raise RuntimeError(f"no counties of {province} in the region table: load the reference data first")
    cats = (await conn.execute(text(
        "SELECT code, name, parent_code FROM product_category WHERE key ORDER BY code"))).all()
    top = [c for c in cats if c.parent_code is None]
    categories = [
        Category(code=t.code, name=t.name,
                 products=tuple((c.code, c.name) for c in cats if c.parent_code == t.code) or ((t.code, t.name),))
        for t in top]
    if not categories:
        raise RuntimeError("no key product categories: load the reference data first")
    return counties, categories


async def enterprises_exist(conn: AsyncConnection) -> bool:
    """Whether the enterprise table holds any row (``serve`` loads the demo only into an empty one)."""
    return bool((await conn.execute(text("SELECT EXISTS (SELECT 1 FROM enterprise)"))).scalar())


async def _present(conn: AsyncConnection, province: str, usernames: list[str]) -> str | None:
    if (await conn.execute(text("SELECT EXISTS (SELECT 1 FROM enterprise WHERE region_code LIKE :p)"),
                           {"p": province[:2] + "%"})).scalar():
        return f"the database already holds enterprises in {province}"
    taken = (await conn.execute(text("SELECT username FROM app_user WHERE lower(username) = ANY(:u) ORDER BY username"),
                                {"u": usernames})).scalars().all()
    if taken:
        return f"the demo users exist already ({', '.join(taken[:4])}{', ...' if len(taken) > 4 else ''})"
    return None


async def _hash_all(passwords: list[str]) -> list[str]:
    # argon2 releases the GIL: hash in threads (16 hashes take ~1-2 s instead of ~3 s)
    sem = asyncio.Semaphore(4)

    async def one(pw: str) -> str:
        async with sem:
            return await asyncio.to_thread(security.hash_password, pw)

    return list(await asyncio.gather(*(one(pw) for pw in passwords)))


async def load_demo(conn: AsyncConnection, *, size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED,
                    as_of: date | None = None, audit_event: bool = True) -> DemoResult:
    """Generate and COPY the demo data set inside ``conn``'s current transaction (the caller commits
    or rolls back). Raises ``DemoDataPresent`` when the province already has enterprises or a demo
    username is taken."""
    t0 = _time.perf_counter()
    as_of = as_of or today()
    usernames = [f"{prefix}.{role}" for _, prefix, _ in USER_BUREAUS for role in ROLES]
    why = await _present(conn, PROVINCE, usernames)
    if why:
        raise DemoDataPresent(why)
    counties, categories = await read_reference(conn)
    data = build(counties, categories, size=size, seed=seed, as_of=as_of)
    hashes = await _hash_all([u.password for u in data.users])
    now = datetime.now(UTC)
    user_rows = [(uid, u.username, h, u.display_name, u.region_code, list(u.roles), True, 1, now, now)
                 for uid, u, h in zip(data.user_ids, data.users, hashes, strict=True)]

    # The SQLAlchemy connection has begun its transaction (the statements above ran in it), so the
    # driver connection's COPYs below are part of that same transaction.
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    # the campaign counters' row triggers are skipped during the COPYs and rebuilt set-based after them
    await raw.execute("SET LOCAL pqs.bulk_load = 'on'")
    for table, columns, rows in (
        ("enterprise", ENTERPRISE_COLUMNS, data.enterprises),
        ("license", LICENSE_COLUMNS, data.licenses),
        ("inspection", INSPECTION_COLUMNS, data.inspections),
        ("penalty_case", CASE_COLUMNS, data.cases),
        ("recall", RECALL_COLUMNS, data.recalls),
        ("recall_progress", RECALL_PROGRESS_COLUMNS, data.recall_progress),
        ("app_user", USER_COLUMNS, user_rows),
    ):
        if rows:
            await raw.copy_records_to_table(table, records=rows, columns=list(columns))
    await raw.execute("SET LOCAL pqs.bulk_load = 'off'")
    await raw.execute("SELECT pqs_rebuild_campaign(id) FROM campaign")
    await raw.execute("SELECT pqs_rebuild_key_facts()")
    result = DemoResult(
        enterprises=len(data.enterprises), licenses=len(data.licenses), inspections=len(data.inspections),
        cases=len(data.cases), unlicensed=sum(1 for e in data.enterprises if not e[8]), users=data.users,
        recalls=len(data.recalls),
        seconds=_time.perf_counter() - t0, as_of=as_of, seed=seed)
    if audit_event:
        await _audit(conn, result, size)
    return result


async def _audit(conn: AsyncConnection, result: DemoResult, size: int) -> None:
    """One audit event for the whole load: the generated rows themselves bypass the audit log."""
    from app.services import audit

    session = AsyncSession(bind=conn)
    try:
        await audit.record(
            session, action="demo.load", entity_type="demo_data", entity_id=f"seed-{result.seed}",
            region_code=PROVINCE, actor_type="system", actor_name="demo",
            after={"seed": result.seed, "size": size, "season_ends": result.as_of.isoformat(),
                   "enterprises": result.enterprises, "licenses": result.licenses,
                   "inspections": result.inspections, "penalty_cases": result.cases,
                   "users": [u.username for u in result.users],
                   "note": "generated rows were written with COPY and bypass the audit log"})
        await session.flush()
    finally:
        await session.close()


def users_table(users: Sequence[DemoUser]) -> str:
    """The demo users and their passwords as a plain-text table (printed once, never stored)."""
    head = ("username", "password", "region", "level", "role", "name", "bureau")
    levels = {"000000": "national", "330000": "provincial", "330100": "city", "330106": "county"}
    rows = [(u.username, u.password, u.region_code, levels.get(u.region_code, "?"), ",".join(u.roles),
             u.display_name, u.bureau) for u in users]
    widths = [max(_width(str(r[i])) for r in [head, *rows]) for i in range(len(head))]

    def fmt(r: Sequence[str]) -> str:
        return "  ".join(str(v) + " " * (w - _width(str(v))) for v, w in zip(r, widths, strict=True)).rstrip()

    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])


def _width(s: str) -> int:
    """Display width: CJK characters take two columns."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)


__all__ = ["DEFAULT_SEED", "DEFAULT_SIZE", "DemoDataPresent", "DemoResult", "DemoUser", "build", "enterprises_exist",
           "load_demo", "make_uscc", "users_table"]
