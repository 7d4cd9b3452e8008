"""Base classes for request and response models."""

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    """A request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ResponseModel(BaseModel):
    """A response body, buildable from ORM objects and rows."""

    model_config = ConfigDict(from_attributes=True)
