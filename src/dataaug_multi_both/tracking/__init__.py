"""Experiment tracking: the MLflow logger, Vault credentials, retries. The only package
that imports mlflow or hvac."""
