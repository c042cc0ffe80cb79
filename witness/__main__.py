from witness.cli import app

app(prog_name="python -m witness")
