"""Recipe results: choosing systems on dev, and the paper-shaped tables (Table 1, Table 5)."""
