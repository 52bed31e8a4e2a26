"""Operations: metrics, logs, the admin views and the garbage collector's tuning."""
