"""Accounts' own vendor keys (PUT/GET/DELETE /api/v1/account/providers) and what they change: the key
wins over the operator's, the run is marked byok, and a graph the operator has no key for still runs."""

from __future__ import annotations

from sqlalchemy import text
from tests.hosted.helpers import flux_graph, node_memory
from tests.support.server import publish, run_to_end

from nodeloom.services.provider_keys import fernet_for

REQUIRED_TYPES = (
    "generate.flux_2_pro", "generate.flux_2_pro_edit", "generate.recraft_v4", "generate.nano_banana_2",
    "generate.nano_banana_pro", "generate.seedream", "generate.imagen", "video.kling_text_to_video",
    "video.kling_image_to_video", "video.veo_3", "video.veo_3_fast", "upscale.crystal", "upscale.seedvr",
    "background.birefnet", "background.bria", "llm.prompt_expand", "llm.chat", "llm.caption_image",
)


def test_put_get_delete_keys_never_return_the_key_and_store_it_encrypted(hosted_server):
    secret_key = "fal-account-secret-0123456789"
    server = hosted_server()
    account_id, key = server.account()
    with server.client(key) as c:
        assert c.get("/api/v1/account/providers").json() == {"data": []}

        put = c.put("/api/v1/account/providers/fal", json={"apiKey": secret_key})
        assert put.status_code == 200, put.text
        assert put.json()["provider"] == "fal" and put.json()["configured"] is True and put.json()["updatedAt"]
        listed = c.get("/api/v1/account/providers")
        assert listed.json() == {"data": [{"provider": "fal", "configured": True,
                                           "updatedAt": put.json()["updatedAt"]}]}
        assert secret_key not in put.text + listed.text

        with server.services.db.read() as s:
            [(stored,)] = s.execute(text("SELECT encrypted_key FROM account_provider_keys WHERE account_id = :a"),
                                    {"a": account_id}).all()
        assert secret_key not in stored
        assert fernet_for(server.settings.secret_key or "").decrypt(stored.encode()).decode() == secret_key

        assert c.put("/api/v1/account/providers/replicate", json={"apiKey": "r8_other"}).status_code == 200
        assert [row["provider"] for row in c.get("/api/v1/account/providers").json()["data"]] == ["fal",
                                                                                                   "replicate"]
        assert c.delete("/api/v1/account/providers/fal").status_code == 204
        assert [row["provider"] for row in c.get("/api/v1/account/providers").json()["data"]] == ["replicate"]
        again = c.delete("/api/v1/account/providers/fal")
        assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"

        unknown = c.put("/api/v1/account/providers/acme", json={"apiKey": "x"})
        assert unknown.status_code == 404 and "fal, replicate, openai, gemini" in unknown.json()["error"]["message"]
        assert c.put("/api/v1/account/providers/fal", json={"apiKey": ""}).status_code == 422
        assert c.put("/api/v1/account/providers/fal", json={"apiKey": "two words"}).status_code == 422
        assert c.put("/api/v1/account/providers/fal", json={}).status_code == 422

    reader = server.key(account_id, ["read", "execute"])
    with server.client(reader) as c:
        assert c.get("/api/v1/account/providers").status_code == 403
        assert c.put("/api/v1/account/providers/fal", json={"apiKey": "x"}).status_code == 403
    _other_account, other_key = server.account()
    with server.client(other_key) as c:  # keys belong to one account
        assert c.get("/api/v1/account/providers").json() == {"data": []}
        assert c.delete("/api/v1/account/providers/replicate").status_code == 404


def test_the_accounts_own_key_takes_precedence_and_marks_the_run_byok(hosted_server, fal_standin):
    server = hosted_server({"FAL_KEY": "operator-key-that-fal-refuses", "NODELOOM_REPLICATE_URL": None,
                            "REPLICATE_API_TOKEN": None})
    _byok_account, byok_key = server.account(credits=100)
    _plain_account, plain_key = server.account(credits=100)
    with server.client(byok_key) as c:
        assert c.put("/api/v1/account/providers/fal", json={"apiKey": fal_standin.key}).status_code == 200
        done = run_to_end(c, publish(c, flux_graph()))
        balance = c.get("/api/v1/account").json()["credits"]
    assert done["status"] == "COMPLETED", done
    assert done["nodes"]["gen"]["outputs"]["vendor"]["byok"] is True
    assert node_memory(server, done["executionId"], "gen")["byok"] is True
    assert balance == 100 and done["creditsUsed"] == 0  # byokCredits: 0
    assert set(fal_standin.auth_seen) == {f"Key {fal_standin.key}"}

    fal_standin.auth_seen.clear()
    with server.client(plain_key) as c:  # the operator's key: fal refuses it, and the node says so
        failed = run_to_end(c, publish(c, flux_graph()))
    assert failed["status"] == "FAILED"
    assert failed["error"]["message"] == ("FLUX.2 [pro] failed: fal: No user found for Key ID and Secret "
                                          "(HTTP 401)")
    assert set(fal_standin.auth_seen) == {"Key operator-key-that-fal-refuses"}


def test_a_vendor_the_account_has_a_key_for_is_tried_first(hosted_server, fal_standin, replicate_standin):
    server = hosted_server()  # the operator's order: fal, then replicate
    _account, key = server.account()
    with server.client(key) as c:
        c.put("/api/v1/account/providers/replicate", json={"apiKey": replicate_standin.token})
        done = run_to_end(c, publish(c, flux_graph()))
    assert done["status"] == "COMPLETED", done
    assert done["nodes"]["gen"]["outputs"]["vendor"]["provider"] == "replicate"
    assert done["nodes"]["gen"]["outputs"]["vendor"]["byok"] is True
    assert fal_standin.submissions == []


def test_the_catalogue_says_which_vendor_is_missing_and_an_own_key_still_runs(hosted_server, fal_standin):
    server = hosted_server({name: None for name in ("FAL_KEY", "REPLICATE_API_TOKEN", "OPENAI_API_KEY",
                                                    "NODELOOM_OPENAI_BASE_URL", "GEMINI_API_KEY")})
    _account, key = server.account(credits=100)
    with server.client(key) as c:
        catalogue = {node["type"]: node for node in c.get("/api/v1/nodes").json()["data"]}
        flux = catalogue["generate.flux_2_pro"]
        assert flux["available"] is False
        assert flux["unavailableReason"] == (
            "set FAL_KEY or REPLICATE_API_TOKEN, or store your own key with PUT /api/v1/account/providers/fal")
        assert c.get("/api/v1/nodes/generate.flux_2_pro").json()["unavailableReason"] == flux["unavailableReason"]
        assert "OPENAI_API_KEY" in catalogue["llm.prompt_expand"]["unavailableReason"]
        assert "GEMINI_API_KEY" in catalogue["llm.prompt_expand"]["unavailableReason"]
        assert catalogue["input.text"]["available"] is True

        # saving is allowed: the account may bring its own key …
        wid = publish(c, flux_graph())
        refused = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {}})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["details"] == [{
            "path": "nodes[1].type",
            "message": "node type 'generate.flux_2_pro' has no configured provider: set FAL_KEY or "
                       "REPLICATE_API_TOKEN, or store your own key with PUT /api/v1/account/providers/fal"}]

        # … and once it has, the same workflow runs on it
        assert c.put("/api/v1/account/providers/fal", json={"apiKey": fal_standin.key}).status_code == 200
        done = run_to_end(c, wid)
    assert done["status"] == "COMPLETED", done
    assert done["nodes"]["gen"]["outputs"]["vendor"]["byok"] is True


def test_the_catalogue_describes_every_hosted_model(hosted_server):
    server = hosted_server()
    _account, key = server.account()
    with server.client(key) as c:
        catalogue = {node["type"]: node for node in c.get("/api/v1/nodes").json()["data"]}
    hosted = {t: n for t, n in catalogue.items() if n["provider"]}
    assert len(hosted) >= 30
    assert set(REQUIRED_TYPES) <= set(hosted)
    for node in hosted.values():
        assert node["available"] is True, node
        assert node["resources"] == "io" and node["deterministic"] is False and node["byokCredits"] == 0
        assert "PUT /api/v1/account/providers/" in node["description"]
    assert catalogue["generate.flux_2_pro"]["credits"] == {"per": "image", "amount": 19}
    assert catalogue["video.veo_3"]["credits"] == {"per": "second", "amount": 64}
    assert catalogue["llm.chat"]["credits"] == 1
    assert "fal.ai (fal-ai/flux-2-pro)" in catalogue["generate.flux_2_pro"]["description"]
    assert "FAL_KEY or REPLICATE_API_TOKEN" in catalogue["generate.flux_2_pro"]["description"]
