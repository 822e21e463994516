"""Built-in default experiments (``optrun train`` / ``optrun minimize`` with no CONFIG)."""
