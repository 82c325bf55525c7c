package portal

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"hotdesk/prov"
	provauth "hotdesk/prov/auth"
)

func importCSV(e *env, csv string, dry bool) (resp, prov.ImportReport) {
	e.t.Helper()
	path := "/api/v1/users/import"
	if dry {
		path += "?dry_run=1"
	}
	r := e.do(asAdmin, "POST", path, csv, "text/csv; charset=utf-8")
	var rep prov.ImportReport
	if r.code < 300 {
		r.into(e.t, &rep)
	}
	return r, rep
}

func TestImportRows(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("existing", "4000")
	csv := "\xef\xbb\xbf" + `First Name,last_name,email,username,numbers,custom1,site,password
Ann,Archer,ann@example.test,,4001,"Sales, EMEA",hq,
"Bo ""Bobby""",Baker,bo@example.test,bo,4002 4003,,,bo-secret
Cy,Cole,cy@example.test,cy,4000,,,
Di,Dunn,di@example.test,bo,,,,
Ed,Eng,not-an-email,ed,,,,
Fay,Fox,fay@example.test,fay,4004,,,,extra
Gus,Gray,gus@example.test,gus,4002,,,
Hal,Hill,hal@example.test,hal,,,mars,
Ida,Ives,ida@example.test,i"da,,,,
Jo,Jay,jo@example.test,jo,,,,
`
	want := []struct {
		line          int
		status, field string
	}{
		{2, "created", ""},
		{3, "created", ""},
		{4, "refused", "numbers"},  // 4000 is existing's
		{5, "refused", "username"}, // bo is on line 3
		{6, "refused", "email"},
		{7, "refused", "row"},     // 9 fields, the header has 8
		{8, "refused", "numbers"}, // 4002 is on line 3
		{9, "refused", "site"},
		{10, "refused", "row"}, // bare quote
		{11, "created", ""},
	}
	check := func(rep prov.ImportReport, created string) {
		t.Helper()
		if rep.Rows != len(want) || len(rep.Results) != len(want) {
			t.Fatalf("report %+v", rep)
		}
		for i, w := range want {
			got := rep.Results[i]
			st := w.status
			if st == "created" {
				st = created
			}
			if got.Line != w.line || got.Status != st || got.Field != w.field || (st == "refused") != (got.Error != "") {
				t.Errorf("row %d: got %+v, want line %d %s %s", i, got, w.line, st, w.field)
			}
		}
	}
	r, rep := importCSV(e, csv, true)
	e.want(r, 200)
	check(rep, prov.ImportWouldCreate)
	if !rep.DryRun || rep.Created != 0 || rep.Refused != 7 {
		t.Fatalf("dry run %+v", rep)
	}
	if n, _ := e.st.CountUsers(t.Context()); n != 1 {
		t.Fatalf("dry run stored users: %d", n)
	}

	r, rep = importCSV(e, csv, false)
	e.want(r, 201)
	check(rep, prov.ImportCreated)
	if rep.Created != 3 || rep.Refused != 7 || rep.Results[0].Username != "ann@example.test" {
		t.Fatalf("import %+v", rep)
	}
	var u userView
	e.want(e.do(asAdmin, "GET", "/api/v1/users/bo", nil), 200).into(t, &u)
	if u.FirstName != `Bo "Bobby"` || strings.Join(u.Numbers, " ") != "4002 4003" {
		t.Fatalf("bo %+v", u)
	}
	e.want(e.do(asAdmin, "GET", "/api/v1/users/ann@example.test", nil), 200).into(t, &u)
	if u.Custom1 != "Sales, EMEA" || u.SiteID != e.site.ID {
		t.Fatalf("ann %+v", u)
	}
	for _, name := range []string{"cy", "gus", "fay", "hal"} {
		e.want(e.do(asAdmin, "GET", "/api/v1/users/"+name, nil), 404)
	}
	// No half user: the refused rows' numbers are free.
	if _, err := e.st.UserByNumber(t.Context(), "4004"); err == nil {
		t.Fatal("a refused row's number was assigned")
	}
	// Only a row with a password gets a login password.
	bo, _ := e.st.GetUser(t.Context(), "bo")
	jo, _ := e.st.GetUser(t.Context(), "jo")
	if !provauth.VerifyPassword(bo.PasswordHash, "bo-secret") || jo.PasswordHash != "" || jo.SIPPassword == "" {
		t.Fatal("imported passwords wrong")
	}
	if len(e.audit("user.import", "users")) != 1 || len(e.audit("user.create", "user:bo")) != 1 {
		t.Fatal("import not audited")
	}
	// Importing the same file again refuses every row as a duplicate.
	_, rep = importCSV(e, csv, false)
	if rep.Created != 0 || rep.Results[0].Field != "username" {
		t.Fatalf("re-import %+v", rep.Results[0])
	}
}

func TestImportBadFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name, csv, ctype string
		code             int
		field            string
	}{
		{"unknown column", "first_name,last_name,email,shoe_size\n", "text/csv", 400, "header"},
		{"missing column", "first_name,email\nA,a@example.test\n", "text/csv", 400, "header"},
		{"duplicate column", "first_name,last_name,email,email\n", "text/csv", 400, "header"},
		{"empty", "", "text/csv", 400, "header"},
		{"not csv", "first_name,last_name,email\n", "application/json", 415, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			r := e.do(asAdmin, "POST", "/api/v1/users/import", tc.csv, tc.ctype)
			e.wantErr(r, tc.code, tc.field)
		})
	}
	e.t = t
	// Header only: nothing to do, nothing refused.
	r, rep := importCSV(e, "first_name,last_name,email\r\n", false)
	e.want(r, 200)
	if rep.Rows != 0 {
		t.Fatalf("%+v", rep)
	}
}

// TestImport300 imports a few hundred rows under the race detector: the
// worker pool hashes the rows with passwords in parallel.
func TestImport300(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var b strings.Builder
	b.WriteString("username,first_name,last_name,email,numbers,password\n")
	for i := range 300 {
		pw := ""
		if i%60 == 0 {
			pw = fmt.Sprintf("secret-%d", i)
		}
		fmt.Fprintf(&b, "u%03d,First%d,Last%d,u%03d@example.test,%d,%s\n", i, i, i, i, 50000+i, pw)
	}
	b.WriteString("dup,D,D,dup@example.test,50007,\n")
	r, rep := importCSV(e, b.String(), false)
	e.want(r, 201)
	if rep.Created != 300 || rep.Refused != 1 || rep.Results[300].Field != "numbers" {
		t.Fatalf("created %d refused %d last %+v", rep.Created, rep.Refused, rep.Results[300])
	}
	var l userList
	e.want(e.do(asAdmin, "GET", "/api/v1/users?limit=1&q=u29", nil), 200).into(t, &l)
	if l.Total != 10 {
		t.Fatalf("search after import: %d", l.Total)
	}
	u, err := e.st.GetUser(t.Context(), "u120")
	if err != nil || !provauth.VerifyPassword(u.PasswordHash, "secret-120") {
		t.Fatalf("u120: %v", err)
	}
}

// TestImportPasswordHash: a password_hash column brings argon2id hashes
// from another system without hashing: the user signs in with the
// password behind it; a bad hash, or a row with both a password and a
// hash, is refused with its reason and the other rows are created.
func TestImportPasswordHash(t *testing.T) {
	e := newEnv(t)
	e.device("0004f2ab0001")
	hash, err := provauth.HashPassword("migrated-pw", provauth.Argon2Params{Memory: 12288, Time: 3, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	csv := "username,first_name,last_name,email,password,password_hash\n" +
		"mia,Mia,M,mia@example.test,,\"" + hash + "\"\n" +
		"ned,Ned,N,ned@example.test,," + hash + "\n" + // unquoted: its commas split it

		"max,Max,M,max@example.test,,$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW\n" +
		"moe,Moe,M,moe@example.test,both-pw-1,\"" + hash + "\"\n" +
		"meg,Meg,M,meg@example.test,plain-pw-1,\n"
	r, rep := importCSV(e, csv, false)
	e.want(r, 201)
	if rep.Created != 2 || rep.Refused != 3 {
		t.Fatalf("created %d refused %d: %+v", rep.Created, rep.Refused, rep.Results)
	}
	for i, want := range []struct{ field, msg string }{{"", ""}, {"row", "quote password_hash"},
		{"password_hash", "only argon2id"}, {"password_hash", "not both"}, {"", ""}} {
		got := rep.Results[i]
		if (want.field == "") != (got.Status == prov.ImportCreated) || got.Field != want.field || !strings.Contains(got.Error, want.msg) {
			t.Errorf("row %d: %+v, want %+v", i+2, got, want)
		}
	}
	mia, err := e.st.GetUser(t.Context(), "mia")
	if err != nil || mia.PasswordHash != hash {
		t.Fatalf("mia's hash was not kept as imported: %v", err)
	}
	// The imported hash works where passwords are checked: a login with it.
	e.want(e.do(asAdmin, "POST", "/api/v1/sessions", loginBody{Device: "0004f2ab0001", User: "mia", Password: "wrong-pw"}), 401)
	e.login(asAdmin, "0004f2ab0001", "mia", "migrated-pw")
}

// TestImportProgressStream: ?progress=1 streams NDJSON over real HTTP:
// progress lines, phases in order with done never going back, the last
// one "storing" with every row stored, then the plain answer's status and
// report. A file refused as a whole gets its plain error status.
func TestImportProgressStream(t *testing.T) {
	e := newEnv(t)
	var b strings.Builder
	b.WriteString("username,first_name,last_name,email,password\n")
	const rows = 12
	for i := range rows {
		fmt.Fprintf(&b, "s%02d,S,T,s%02d@example.test,secret-%d\n", i, i, i)
	}
	b.WriteString("bad,B,C,not-an-email,\n")
	r := e.want(e.do(asAdmin, "POST", "/api/v1/users/import?progress=1", b.String(), "text/csv"), 200)
	if ct := r.hdr.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("content type %q", ct)
	}
	lines := strings.Split(strings.TrimSpace(string(r.body)), "\n")
	if len(lines) < 2 {
		t.Fatalf("want progress lines and a last line: %s", r.body)
	}
	phase, done := 0, -1
	order := map[string]int{prov.ImportPreparing: 1, prov.ImportStoring: 2}
	var last prov.ImportProgress
	for _, l := range lines[:len(lines)-1] {
		var pl struct{ Progress *prov.ImportProgress }
		if err := json.Unmarshal([]byte(l), &pl); err != nil || pl.Progress == nil {
			t.Fatalf("not a progress line: %s (%v)", l, err)
		}
		p := *pl.Progress
		switch ph := order[p.Phase]; {
		case ph == 0 || ph < phase:
			t.Fatalf("phase out of order: %s", l)
		case ph > phase:
			phase, done = ph, -1
		}
		if p.Done < done || p.Done > p.Total {
			t.Fatalf("done went back or past total: %s", l)
		}
		done, last = p.Done, p
	}
	if last != (prov.ImportProgress{Phase: prov.ImportStoring, Done: rows, Total: rows}) {
		t.Fatalf("last progress %+v, want every row stored", last)
	}
	var end struct {
		Status int
		Body   prov.ImportReport
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &end); err != nil || end.Status != 201 ||
		end.Body.Created != rows || end.Body.Refused != 1 || end.Body.Results[rows].Field != "email" {
		t.Fatalf("last line %s (%v)", lines[len(lines)-1], err)
	}
	// Refused as a whole: the plain error, no stream.
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/users/import?progress=1", "first_name,shoe\n", "text/csv"), 400, "header")
}
