"""The wire contract shared by global_api, regional_api and router: pydantic models only."""
