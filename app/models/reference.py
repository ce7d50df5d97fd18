"""Reference data: the GB/T 2260 region tree and the product-category tree."""

from __future__ import annotations

from sqlmodel import Field, SQLModel
from sqlmodel._compat import SQLModelConfig

from app.models.common import Level, enum_column_type


class RegionBase(SQLModel):
    code: str = Field(primary_key=True, max_length=6)
    name: str
    full_name: str
    level: Level = Field(sa_type=enum_column_type(Level))
    parent_code: str | None = Field(default=None, index=True, max_length=6)


class Region(RegionBase, table=True):
    __tablename__ = "region"


class RegionPublic(RegionBase):
    model_config = SQLModelConfig(json_schema_extra={"example": {
        "code": "330106", "name": "西湖区", "full_name": "浙江省杭州市西湖区", "level": "county",
        "parent_code": "330100"}})


class ProductCategoryBase(SQLModel):
    code: str = Field(primary_key=True, max_length=16)
    name: str
    parent_code: str | None = Field(default=None, index=True, max_length=16)
    key: bool = False


class ProductCategory(ProductCategoryBase, table=True):
    __tablename__ = "product_category"

    sort_order: int = 0


class ProductCategoryPublic(ProductCategoryBase):
    model_config = SQLModelConfig(json_schema_extra={"example": {
        "code": "05", "name": "电线电缆", "parent_code": None, "key": True}})
