"""MLflow tracking and the model registry (the only place that imports mlflow), locks, model names."""
