"""The pages people use, served as static files by the app."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
