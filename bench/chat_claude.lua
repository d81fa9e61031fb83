-- chat_claude.lua: wrk script posting the same non-streaming chat
-- completion as chat.lua to a claude- model, which bench/proxy.yaml routes
-- to an anthropic-type provider (OpenAI client -> Anthropic translation).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"claude-bench","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the benchmark in a few words please"}]}'
