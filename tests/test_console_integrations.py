"""The ops page for the clinic's other systems: API keys (shown once, revoked) and outgoing
webhooks (the secret shown once, removed), ops only, every change audited."""

from __future__ import annotations

import re

from sqlalchemy import select

from staff.tables import audit_log
from tests.support.api import assert_problem, bearer
from tests.support.console import Console


def test_ops_make_and_revoke_a_key_and_add_a_webhook(console: Console) -> None:
    marketing, _ = console.signed_in("marketing")
    assert marketing.get("/admin/ops/integrations").status_code == 403
    client, csrf = console.signed_in("ops")
    made = client.post(
        "/admin/ops/integrations/keys",
        data={"name": "booking", "scopes": ["stats:read"], "csrf_token": csrf},
    )
    assert made.status_code == 200, made.text
    found = re.search(r'<code id="api-key">([^<]+)</code>', made.text)
    assert found
    key = found.group(1)
    assert client.get("/api/v1/campaigns", headers=bearer(key)).status_code == 200
    listed = client.get("/admin/ops/integrations")
    assert "booking" in listed.text and key not in listed.text  # shown once
    refused = client.post(
        "/admin/ops/integrations/keys", data={"name": "x", "scopes": ["all"], "csrf_token": csrf}
    )
    assert refused.status_code == 422 and "unknown scope" in refused.text
    gone = client.post("/admin/ops/integrations/keys/booking/revoke", data={"csrf_token": csrf})
    assert gone.status_code == 303
    assert_problem(client.get("/api/v1/campaigns", headers=bearer(key)), 401)
    hook = client.post(
        "/admin/ops/integrations/webhooks",
        data={
            "url": "https://pms.example/hooks",
            "events": ["goal.reached", "subscriber.red_flag"],
            "csrf_token": csrf,
        },
    )
    assert hook.status_code == 200 and 'id="webhook-secret">whsec_' in hook.text
    assert "https://pms.example/hooks" in hook.text
    with console.ctx.db.begin() as conn:
        actions = set(conn.execute(select(audit_log.c.action)).scalars())
    assert {"apikey.create", "apikey.revoke", "webhook.add"} <= actions
    # Without the session's CSRF token nothing changes.
    forged = client.post(
        "/admin/ops/integrations/keys", data={"name": "y", "scopes": ["stats:read"]}
    )
    assert forged.status_code == 403
