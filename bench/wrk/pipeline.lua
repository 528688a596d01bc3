-- Pipelining for wrk: every write carries DEPTH requests for PATH, sent back to back without
-- waiting for the responses, as an HTTP/1.1 client may (RFC 9112 9.3.2). The server must
-- answer them in order; wrk counts each response.
--
--   wrk -t1 -c50 -d10 -s bench/wrk/pipeline.lua http://127.0.0.1:8080 -- /plaintext 16
--
-- Arguments after "--": PATH (default "/plaintext"), DEPTH (default 16, the TechEmpower
-- plaintext test's depth).

local batch

function init(args)
  local path = args[1] or "/plaintext"
  local depth = tonumber(args[2]) or 16
  local requests = {}
  for i = 1, depth do
    -- wrk.format(method, path, headers, body): nil takes wrk's method and headers (Host).
    requests[i] = wrk.format(nil, path)
  end
  batch = table.concat(requests)
end

function request()
  return batch
end
