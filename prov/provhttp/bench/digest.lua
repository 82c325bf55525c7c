-- digest.lua — wrk script for http_devices_vs_nginx.sh: each request GETs the
-- next device's file with a digest answer (RFC 7616, MD5, qop=auth) computed
-- here, as a phone does: the device's HA1 and its nonce come from the file
-- devices_prep.py wrote (wrk ... -- DEVICES), nc counts per device and
-- thread (thread t uses nc (t+1)*2^24+1, +2, …: every answer is new to the
-- daemon's replay guard). nginx ignores the header: both servers get the same
-- requests and the client's cost is the same.
local bit = require("bit")
local band, bor, bxor, bnot, lshift, rshift, rol, tobit =
  bit.band, bit.bor, bit.bxor, bit.bnot, bit.lshift, bit.rshift, bit.rol, bit.tobit

local K, S = {}, {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
  5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21}
for i = 0, 63 do K[i + 1] = tobit(math.floor(math.abs(math.sin(i + 1)) * 2 ^ 32) % 2 ^ 32) end

local function md5(msg)
  local len = #msg
  msg = msg .. "\128" .. string.rep("\0", (55 - len) % 64)
  local bits = len * 8
  for i = 0, 7 do msg = msg .. string.char(math.floor(bits / 2 ^ (8 * i)) % 256) end
  local a0, b0, c0, d0 = tobit(0x67452301), tobit(0xefcdab89), tobit(0x98badcfe), tobit(0x10325476)
  local M = {}
  for off = 1, #msg, 64 do
    for j = 0, 15 do
      local p = off + j * 4
      local b1, b2, b3, b4 = msg:byte(p, p + 3)
      M[j] = bor(b1, lshift(b2, 8), lshift(b3, 16), lshift(b4, 24))
    end
    local A, B, C, D = a0, b0, c0, d0
    for i = 0, 63 do
      local F, g
      if i < 16 then F, g = bor(band(B, C), band(bnot(B), D)), i
      elseif i < 32 then F, g = bor(band(D, B), band(bnot(D), C)), (5 * i + 1) % 16
      elseif i < 48 then F, g = bxor(B, C, D), (3 * i + 5) % 16
      else F, g = bxor(C, bor(B, bnot(D))), (7 * i) % 16 end
      F = tobit(F + A + K[i + 1] + M[g])
      A, D, C = D, C, B
      B = tobit(B + rol(F, S[i + 1]))
    end
    a0, b0, c0, d0 = tobit(a0 + A), tobit(b0 + B), tobit(c0 + C), tobit(d0 + D)
  end
  local out = {}
  for _, w in ipairs({a0, b0, c0, d0}) do
    for i = 0, 3 do out[#out + 1] = string.format("%02x", band(rshift(w, 8 * i), 0xff)) end
  end
  return table.concat(out)
end

local devices = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

function init(args)
  tid = tid or 0 -- set by setup() in this thread's globals
  assert(md5("") == "d41d8cd98f00b204e9800998ecf8427e", "md5 self-test")
  assert(md5("The quick brown fox jumps over the lazy dog") == "9e107d9d372bb6826bd81d3542a419d6", "md5 self-test")
  for line in io.lines(args[1]) do
    local path, user, realm, ha1, nonce = line:match("^(%S+) (%S+) (%S+) (%S+) (%S+)$")
    devices[#devices + 1] = {path = path, user = user, realm = realm, ha1 = ha1, nonce = nonce,
      ha2 = md5("GET:" .. path), nc = (tid + 1) * 2 ^ 24}
  end
  next_dev = (tid * 7919) % #devices -- threads start at different devices
end

function request()
  next_dev = next_dev % #devices + 1
  local d = devices[next_dev]
  d.nc = d.nc + 1
  local nc = string.format("%08x", d.nc)
  local resp = md5(d.ha1 .. ":" .. d.nonce .. ":" .. nc .. ":wrk:auth:" .. d.ha2)
  return wrk.format("GET", d.path, {["Authorization"] = 'Digest username="' .. d.user .. '", realm="' .. d.realm ..
    '", nonce="' .. d.nonce .. '", uri="' .. d.path .. '", algorithm=MD5, response="' .. resp ..
    '", qop=auth, nc=' .. nc .. ', cnonce="wrk"', ["User-Agent"] = "FileTransport PolycomVVX-VVX_411-UA/6.4.3.5018"})
end
