"""The Powertools logger, tracer and metrics every Lambda entry point shares (one configuration)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

logger = Logger(service="chat-sessions")
# Only botocore (DynamoDB, SSM): patching everything would import and wrap sqlite3, httplib...
tracer = Tracer(service="chat-sessions", patch_modules=["botocore"])
metrics = Metrics(namespace="ChatSessions", service="chat-sessions")
copy_config_to_registered_loggers(source_logger=logger, include={"chat_sessions"})
