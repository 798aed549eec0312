from capacity.cli import app

app(prog_name="capacity")
