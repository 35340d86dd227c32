"""Configuration: schema + validation, Hydra composition, bundled YAML."""
