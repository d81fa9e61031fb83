-- messages.lua: wrk script posting one non-streaming Anthropic Messages
-- request. The model comes from the MODEL environment variable (default
-- gpt-bench, which bench/proxy.yaml routes to an openai-compatible
-- provider: Anthropic client -> OpenAI translation; claude-bench stays
-- Anthropic end to end).
local model = os.getenv("MODEL") or "gpt-bench"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.body = '{"model":"' .. model .. '","max_tokens":256,"system":"You are terse.","messages":[{"role":"user","content":"Say hello to the benchmark in a few words please"}]}'
