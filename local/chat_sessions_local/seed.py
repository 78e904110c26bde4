"""The data the sample events (events/*.json) assume, for ``sam local invoke`` and the tests.

    make seed      # into the DynamoDB Local of a running `make dev`

``user-123`` owns ``trip-2026`` (3 messages, ``topic=travel``), ``empty-chat`` and a session whose
id only a percent-encoded path addresses; ``user-456`` owns ``their-chat``. For the tests (no
stream consumer), ``user-123`` has also asked for the deletion of everything
(``SAMPLE_DELETION_ID``): ``make dev``'s cascade would carry it out, so ``make seed`` leaves it
out, and ``get_deletion.json`` answers 404 there.
"""

from __future__ import annotations

import boto3

from chat_sessions import ChatStore

from .dev import DEV_DYNAMODB_PORT, TABLE, library_environment

OWNER = "user-123"
ENCODED_ID = "Lisbon #2 día 50%"
SAMPLE_DELETION_ID = "5d41402abc4b2a76b9719d911017c592"
TRIP = [
    {"role": "user", "content": "Find hotels in Lisbon"},
    {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Alfama or Chiado.", "annotations": []}],
    },
    {"role": "user", "content": "Which is quieter?"},
]


def seed(store: ChatStore, *, deletion: bool = False) -> None:
    """Create the samples' sessions (and with ``deletion`` the delete-all request);
    ``trip-2026`` gets its messages only when it is new, so seeding twice changes nothing."""
    _, created = store.create_session(
        OWNER, "trip-2026", title="Lisbon trip", metadata={"topic": "travel"}
    )
    if created:
        store.append_items(OWNER, "trip-2026", TRIP)
    store.create_session(OWNER, "empty-chat", metadata={"topic": "misc"})
    store.create_session(OWNER, ENCODED_ID)
    store.create_session("user-456", "their-chat")
    if deletion:
        store.request_deletion(OWNER, deletion_id=SAMPLE_DELETION_ID)


def main() -> None:
    environment = library_environment(f"http://127.0.0.1:{DEV_DYNAMODB_PORT}")
    client = boto3.client(
        "dynamodb",
        endpoint_url=environment["CHAT_SESSIONS_ENDPOINT_URL"],
        region_name=environment["AWS_DEFAULT_REGION"],
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
    )
    seed(ChatStore(TABLE, client=client))
    print(f"seeded the sample events' data into {TABLE!r} at {client.meta.endpoint_url}")


if __name__ == "__main__":
    main()
