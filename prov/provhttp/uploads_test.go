package provhttp

import (
	"context"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/icholy/digest"

	"hotdesk/prov"
	"hotdesk/prov/files"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const phoneUA = "FileTransport PolycomVVX-VVX_400-UA/5.9.0 (SN:" + mac + ") Type/Application"

// loggedInOn enrolls the phone and logs alice in on it with the native door,
// as the phone does: it fetches alice.cfg with her login as digest
// credentials.
func loggedInOn(t *testing.T, front string) *env {
	t.Helper()
	e := newEnvOn(t, front, nil)
	ctx := context.Background()
	e.do(t, "GET", "/"+mac+".cfg", "", map[string]string{"User-Agent": phoneUA})
	e.do(t, "GET", "/"+mac+"-hotdesk.cfg", "", nil) // hands out the device's credentials
	u := prov.User{Username: "alice", FirstName: "Alice", LastName: "A", Status: prov.StatusActive,
		Kind: prov.KindPerson, LoginHA1: prov.LoginHA1s("alice", "pw1234")}
	if err := e.st.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	if err := e.st.AssignNumber(ctx, "1001", u.ID); err != nil {
		t.Fatal(err)
	}
	if code, body := e.alice(t, "GET", "/alice.cfg", ""); code != 200 {
		t.Fatalf("native login: %d %s", code, body)
	}
	return e
}

// alice does a request with alice's login, as her phone does for her files.
func (e *env) alice(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("User-Agent", phoneUA)
	resp, err := (&http.Client{Transport: &digest.Transport{Username: "alice", Password: "pw1234"}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// refusedParams is hotdesk_prov_upload_params_refused_total{reason}.
func (e *env) refusedParams(t *testing.T, reason string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hotdesk_prov_upload_params_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestUploadKeepsWhatThePhoneOwns: a <user>-phone.cfg (and a <MAC>-phone.cfg)
// that also carries parameters a phone may not set is stored with the
// others, which the files the phone fetches then carry; the refused ones
// are left out and counted by reason.
func TestUploadKeepsWhatThePhoneOwns(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		t.Parallel()
		e := loggedInOn(t, front)
		ctx := context.Background()
		allowed := map[string]string{
			"reg.1.label": "Sales desk", "reg.1.lineKeys": "2", "reg.1.ringType": "ringer7",
			"ptt.channel.3.subscribed": "1", "ptt.channel.3.allowTransmit": "0", "ptt.displayName": "Alice",
			"up.backlight.idleIntensity": "1", "call.callWaiting.ring": "beep", "feature.urlDialing.enabled": "0",
			"divert.1.contact": "1002", "dir.local.readonly": "0", "lineKey.3.category": "Line",
		}
		refused := map[string]string{
			"reg.1.address": "evil", "reg.1.auth.password": "stolen", "reg.1.server.1.address": "evil.example",
			"device.prov.serverName": "evil.example", "prov.polling.enabled": "1", "dir.corp.address": "ldap://evil.example",
			"voIpProt.server.1.address": "evil.example", "reg.1.displayName": "The CEO", "ptt.address": "224.0.1.116",
		}
		var b strings.Builder
		b.WriteString(`<?xml version="1.0" standalone="yes"?>` + "\n<PHONE_CONFIG>\n<OVERRIDES")
		for _, m := range []map[string]string{allowed, refused} {
			for k, v := range m {
				b.WriteString(" " + k + `="` + v + `"`)
			}
		}
		b.WriteString("/>\n</PHONE_CONFIG>\n")
		if code, body := e.alice(t, "PUT", "/alice-phone.cfg", b.String()); code != 204 {
			t.Fatalf("PUT alice-phone.cfg with refused parameters: %d %s", code, body)
		}
		up, err := e.st.LatestUpload(ctx, "user:alice", "phone.cfg")
		if err != nil {
			t.Fatal(err)
		}
		stored, err := files.ParseConfigParams(up.Data)
		if err != nil || len(stored) != len(allowed) {
			t.Fatalf("stored %v (%v), want the %d allowed parameters:\n%s", stored, err, len(allowed), up.Data)
		}
		for k, v := range allowed {
			if stored[k] != v {
				t.Errorf("stored %s=%q, want %q", k, stored[k], v)
			}
		}
		// The phone fetches the upload back and its profile merged with it.
		if code, body := e.alice(t, "GET", "/alice-phone.cfg", ""); code != 200 || body != string(up.Data) {
			t.Errorf("GET alice-phone.cfg: %d %q", code, body)
		}
		code, profile := e.alice(t, "GET", "/alice.cfg", "")
		if code != 200 {
			t.Fatalf("GET alice.cfg: %d", code)
		}
		for k, v := range allowed {
			if !strings.Contains(profile, k+`="`+v+`"`) {
				t.Errorf("alice.cfg lacks %s=%q", k, v)
			}
		}
		for k, v := range refused {
			if strings.Contains(profile, k+`="`+v+`"`) {
				t.Errorf("alice.cfg carries the refused %s=%q", k, v)
			}
		}
		if strings.Contains(profile, "evil") || strings.Contains(profile, "stolen") || strings.Contains(profile, "The CEO") {
			t.Errorf("a refused value reached alice.cfg:\n%s", profile)
		}
		if !strings.Contains(profile, `reg.1.address="1001"`) {
			t.Errorf("the line's own address is gone:\n%s", profile)
		}
		logs := e.logs.String()
		for k := range refused {
			if !strings.Contains(logs, k+" (") {
				t.Errorf("no log line names the refused %s:\n%s", k, logs)
			}
		}
		want := map[string]float64{files.RefusedAddress: 5, files.RefusedSecret: 1, files.RefusedProvisioning: 2,
			files.RefusedNotPhoneOwned: 1}
		for reason, n := range want {
			if got := e.refusedParams(t, reason); got != n {
				t.Errorf("refused{reason=%q} = %v, want %v", reason, got, n)
			}
		}

		// The device's own override file, written with its provisioning credentials.
		dev := `<polycomConfig><reg reg.1.label="Lobby" reg.1.address="evil"/><up up.volume.handset="4"/>` +
			`<device device.prov.serverName="evil.example"/></polycomConfig>`
		if code, body := e.dev(t, "PUT", "/"+mac+"-phone.cfg", dev); code != 204 {
			t.Fatalf("PUT %s-phone.cfg: %d %s", mac, code, body)
		}
		code, devFile := e.dev(t, "GET", "/"+mac+"-hotdesk.cfg", "")
		if code != 200 || !strings.Contains(devFile, `up.volume.handset="4"`) || !strings.Contains(devFile, `reg.1.label="Lobby"`) {
			t.Errorf("device file lacks the device upload's parameters: %d\n%s", code, devFile)
		}
		if strings.Contains(devFile, "evil") {
			t.Errorf("a refused value reached the device file:\n%s", devFile)
		}
		if got := e.refusedParams(t, files.RefusedAddress); got != 6 {
			t.Errorf("refused{reason=address} = %v after the device upload, want 6", got)
		}
	})
}

// TestDirectoryRoundTripsEveryField: every item field of the Polycom
// directory format comes back to the phone as it uploaded it, also after
// the user edits the directory in the portal.
func TestDirectoryRoundTripsEveryField(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		t.Parallel()
		e := loggedInOn(t, front)
		ctx := context.Background()
		in, err := os.ReadFile(filepath.Join("testdata", "directory_every_field.xml"))
		if err != nil {
			t.Fatal(err)
		}
		if code, body := e.alice(t, "PUT", "/alice-directory.xml", string(in)); code != 204 {
			t.Fatalf("PUT alice-directory.xml: %d %s", code, body)
		}
		check := func(golden string) {
			t.Helper()
			code, got := e.alice(t, "GET", "/alice-directory.xml", "")
			if code != 200 {
				t.Fatalf("GET alice-directory.xml: %d", code)
			}
			path := filepath.Join("testdata", golden)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s differs (run with -update):\n%s", path, got)
			}
			for _, f := range []string{"fn", "ln", "ct", "sd", "lb", "pt", "rt", "dc", "ad", "ar", "bw", "bb"} {
				if !strings.Contains(got, "<"+f+">") {
					t.Errorf("field <%s> missing:\n%s", f, got)
				}
			}
		}
		check("directory_every_field.golden")

		// The portal edits a contact's label and drops another: the phone's
		// fields stay with the contacts that keep their numbers.
		u, err := e.st.GetUser(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		cs, err := e.st.ListContacts(ctx, u.ID)
		if err != nil || len(cs) != 3 {
			t.Fatalf("contacts %+v %v", cs, err)
		}
		cs[0].Label = "Bob (portal)"
		cs = []prov.Contact{cs[0], cs[2]}
		cs[1].Position = 2
		if err := e.st.ReplaceContacts(ctx, u.ID, cs); err != nil {
			t.Fatal(err)
		}
		e.events.Publish(ctx, prov.Event{Kind: prov.EventUserChanged, UserID: u.ID, Reason: "directory"})
		check("directory_after_portal_edit.golden")
	})
}
