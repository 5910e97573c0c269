"""The evaluator: scores batches of action sequences, vectorised; N workers share one MQTT v5 subscription."""
