"""Handlers of your own, for `consumer.py GROUP CONSUMER --handler examples.<module>:<function>`."""
