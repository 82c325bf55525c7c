package portal

import (
	"strings"
	"testing"
)

// TestUsernamesAndNumbersShareANamespace performs the routing
// takeover: a user named like another user's number (or given a number
// that is another user's name) was accepted, and whichever the lookup
// found first got the other's calls and keypad logins. Each way in — API
// create, number assignment, CSV import — now refuses it with 409 or a
// refused row naming the field.
func TestUsernamesAndNumbersShareANamespace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("alice", "1001", "+4930123")
	e.user("2002") // a user name that looks like a number

	create := func(username string, numbers ...string) resp {
		return e.do(asAdmin, "POST", "/api/v1/users", map[string]any{"username": username, "first_name": "M",
			"last_name": "Allory", "email": "m" + username + "@example.test", "numbers": numbers})
	}
	e.wantErr(create("1001"), 409, "username")
	e.wantErr(create("4930123"), 409, "username") // alice's +4930123 without the plus
	e.wantErr(create("mallory", "2002"), 409, "numbers")
	e.wantErr(create("mallory", "+2002"), 409, "numbers")
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/users/alice/numbers", numbersBody{Numbers: []string{"2002"}}), 409, "numbers")
	e.want(create("3003", "3003"), 201) // one's own name may be one's own number

	_, rep := importCSV(e, "first_name,last_name,email,username,numbers\n"+
		"Mal,Lory,mal@example.test,1001,\n"+
		"Eve,Il,eve@example.test,eve,2002\n"+
		"Tom,Two,tom@example.test,5005,\n"+
		"Kim,Kay,kim@example.test,kim,5005\n", false)
	for i, want := range []struct{ status, field string }{
		{"refused", "username"}, {"refused", "numbers"}, {"created", ""}, {"refused", "numbers"},
	} {
		got := rep.Results[i]
		if string(got.Status) != want.status || got.Field != want.field {
			t.Fatalf("import line %d: %+v, want %s %s", got.Line, got, want.status, want.field)
		}
		if want.field != "" && !strings.Contains(got.Error, "another user's") {
			t.Fatalf("import line %d: unclear error %q", got.Line, got.Error)
		}
	}
}
