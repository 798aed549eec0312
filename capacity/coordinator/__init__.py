"""The regional coordinator's view over time: stops per quarter, LNAZ-style, and free places and pressure as series."""
