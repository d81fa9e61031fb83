-- chat.lua: wrk script posting one non-streaming chat completion.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"mock-echo","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the benchmark in a few words please"}]}'
