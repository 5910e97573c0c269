"""The evaluator: grows and scores batches of action sequences, vectorised; N workers share a subscription."""
