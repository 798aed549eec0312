"""Geography: ROAZ regions, the facility registry and its reference data."""
