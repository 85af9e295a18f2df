"""Pure estimators: parameters, memory, compute time and cost, serving, expected benefit."""
