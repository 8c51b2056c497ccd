"""A relay-only call between two Chromium pages: the service hands each side
its call's TURN credentials and `iceTransportPolicy: "relay"`, and all media
goes through a real coturn started here."""

from __future__ import annotations

import pytest

from tests.turn_server import Turn

from .helpers import NewContext, connect_call

SELECTED_PAIR_TYPES = """
async () => {
    const stats = await window.signvideo.pc.getStats();
    let pair = null;
    stats.forEach((s) => {
        if (s.type === "transport" && s.selectedCandidatePairId) {
            pair = stats.get(s.selectedCandidatePairId);
        }
    });
    if (!pair) return null;
    return [stats.get(pair.localCandidateId).candidateType,
            stats.get(pair.remoteCandidateId).candidateType];
}
"""


@pytest.fixture
def server_env(server_env: dict[str, str], coturn: Turn) -> dict[str, str]:
    return {
        **server_env,
        "SIGNVIDEO_TURN_URLS": coturn.url,
        "SIGNVIDEO_TURN_SECRET": coturn.secret,
        "SIGNVIDEO_ICE_TRANSPORT_POLICY": "relay",
    }


async def test_a_relay_only_call_between_browsers(coturn: Turn, new_context: NewContext) -> None:
    caller, console = await connect_call(new_context)
    for page in (caller, console):
        types = await page.evaluate(SELECTED_PAIR_TYPES)
        # A relay-only peer's local candidates are all relayed.
        assert types is not None and types[0] == "relay", types
    call_id = await caller.evaluate("window.signvideo.callId")
    assert f":{call_id}>" in coturn.log()
