package daemon

import (
	"net"
	"strconv"
	"testing"
)

// TestThirdPartySettingsShowTheBoundSIPPort: the settings typed into a
// third-party phone carry the port and transport SIP really listens on
// (here a random one), not a configured 5060, and that account registers
// there.
func TestThirdPartySettingsShowTheBoundSIPPort(t *testing.T) {
	a, addrs := demoDaemon(t)
	admin := &relockEnv{t: t, a: a, addrs: addrs}
	const mac = "0004f2aa0007"
	if code, body := admin.api("POST", "/devices/"+mac+"/assign", `{"user":"bob","kind":"third_party"}`); code != 200 {
		t.Fatalf("assign third-party = %d %v", code, body)
	}
	_, acc := admin.api("GET", "/devices/"+mac+"/sip-account?reveal=1", "")
	_, p, _ := net.SplitHostPort(addrs.SIPUDP[0])
	want, _ := strconv.Atoi(p)
	if want == 5060 || acc["port"] != float64(want) || acc["transport"] != "udp" {
		t.Fatalf("sip-account = %v, want udp port %d", acc, want)
	}
	phone := newHandset(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(acc["port"].(float64)))), "test.lan")
	if code := phone.register(t, acc["user_id"].(string), acc["user_id"].(string), acc["password"].(string), 600); code != 200 {
		t.Fatalf("REGISTER with the shown settings = %d", code)
	}
}
