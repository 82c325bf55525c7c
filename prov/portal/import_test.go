package portal

import (
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
