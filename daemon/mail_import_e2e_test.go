package daemon

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"hotdesk/prov/mail/mailpittest"
)

// TestImportWelcomeMail: a CSV import sends welcome messages only when
// asked (API flag, portal checkbox), to a real SMTP server, paced through
// a backlog: with a mail queue of one message, every one of the import's
// messages still arrives (each waits for room instead of being dropped),
// and the backlog metric counts them queued.
func TestImportWelcomeMail(t *testing.T) {
	mp := mailpittest.Start(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := l.Addr().String()
	l.Close()
	base := "http://" + adminAddr
	cfg, err := Parse([]byte(`
data_dir: ` + t.TempDir() + `
admin: {listen: "` + adminAddr + `", initial_password: "test-admin-pw"}
provisioning: {http_listen: "127.0.0.1:0", tftp_listen: ""}
sip: {listen: ["udp://127.0.0.1:0"], domain: test.lan}
mail: {host: 127.0.0.1, port: ` + strconv.Itoa(mp.Port) + `, tls: none, from: "Hotdesk <hotdesk@example.test>",
  base_url: "` + base + `/", retry_backoff: 10ms, queue_size: 1, import_rate: 1000}
`))
	if err != nil {
		t.Fatal(err)
	}
	var a *app
	_, _ = startDaemon(t, cfg, Options{onBuilt: func(x *app) { a = x }})
	importCSV := func(query, csv string) (int, string) {
		req, _ := http.NewRequest("POST", base+"/api/v1/users/import"+query, strings.NewReader(csv))
		req.Header.Set("Content-Type", "text/csv")
		req.SetBasicAuth("admin", "test-admin-pw")
		res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	// Without the flag: users, no mail.
	if code, body := importCSV("", "username,first_name,last_name,email\nquiet,Quiet,User,quiet@example.test\n"); code != 201 ||
		!strings.Contains(body, `"welcome":0`) {
		t.Fatalf("import without welcome = %d %s", code, body)
	}
	// With it: each created user gets a welcome in their language; a
	// refused row gets nothing.
	csv := "username,first_name,last_name,email,language\n" +
		"imp1,Ida,One,imp1@example.test,de\nimp2,Ivo,Two,imp2@example.test,fr\n" +
		"imp3,Ina,Three,imp3@example.test,es\nimp4,Ian,Four,imp4@example.test,en\n" +
		"bad,,Refused,bad@example.test,en\n"
	code, body := importCSV("?welcome=true", csv)
	if code != 201 || !strings.Contains(body, `"created":4`) || !strings.Contains(body, `"welcome":4`) {
		t.Fatalf("import with welcome = %d %s", code, body)
	}
	for _, tc := range []struct{ to, subject string }{
		{"imp1@example.test", "Willkommen bei Ihrem Telefonkonto"},
		{"imp2@example.test", "Bienvenue sur votre compte téléphonique"},
		{"imp3@example.test", "Bienvenido a su cuenta telefónica"},
		{"imp4@example.test", "Welcome to your phone account"},
	} {
		if m := mp.Wait(t, tc.to, 1); m.Subject != tc.subject || !linkRE.MatchString(m.Text) {
			t.Errorf("%s: %q\n%s", tc.to, m.Subject, m.Text)
		}
	}

	// The portal's checkbox.
	adm := browser(t)
	if code, loc := signIn(t, adm, base, "admin", "test-admin-pw"); code != 303 || loc != "/admin/" {
		t.Fatalf("admin sign-in = %d → %q", code, loc)
	}
	code, body = fetch(t, adm, "GET", base+"/admin/users/import", nil)
	if code != 200 || !strings.Contains(body, `name="welcome"`) {
		t.Fatalf("import page = %d, no welcome checkbox:\n%s", code, body)
	}
	tok := csrfRE.FindStringSubmatch(body)[1]
	code, body = fetch(t, adm, "POST", base+"/admin/users/import", url.Values{"csrf": {tok}, "welcome": {"on"},
		"csv": {"username,first_name,last_name,email,language\nweb1,Wen,Web,web1@example.test,de\n"}})
	if code != 200 || !strings.Contains(body, "1 welcome e-mails are being sent") {
		t.Fatalf("portal import = %d\n%s", code, body)
	}
	mp.Wait(t, "web1@example.test", 1)

	a.svc.links.Wait() // the backlog worker is done
	if n := len(mp.To(t, "quiet@example.test")); n != 0 {
		t.Errorf("an import without welcome sent %d messages", n)
	}
	if n := len(mp.To(t, "bad@example.test")); n != 0 {
		t.Errorf("a refused row got %d messages", n)
	}
	if n := metricValue(t, a, "hotdesk_mail_import_welcome_total"); n != 5 {
		t.Errorf("hotdesk_mail_import_welcome_total = %v, want 5 (all queued)", n)
	}
	if n := metricValue(t, a, "hotdesk_mail_sent_total"); n != 5 {
		t.Errorf("hotdesk_mail_sent_total = %v, want 5 (none dropped by the one-message queue)", n)
	}
}
