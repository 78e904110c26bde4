"""The chat turn: POST /v1/sessions/{session_id}/chat and POST /v1/chat.

One FastAPI app serves both edges: Server-Sent Events on the function URL (uvicorn under the
Lambda Web Adapter, run.sh) and buffered JSON on the HTTP API (``handler``, Mangum).
"""

from mangum import Mangum

from chat_sessions import service
from chat_sessions.agent_config import AgentSettings, build_agent
from chat_sessions.chat_app import create_chat_app
from chat_sessions.tokens import verifier_from_settings

app = create_chat_app(
    store=service.get_store,
    agent=build_agent,
    verifier=verifier_from_settings,
    settings=AgentSettings().turn_settings(),
)
handler = Mangum(app, lifespan="off")
