from anomalyflow.cli import app

app()
