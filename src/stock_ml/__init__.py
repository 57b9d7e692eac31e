"""stock_ml: daily stock predictions kept honest over time (Kedro + MLflow + Airflow)."""

__version__ = "0.1.0"
