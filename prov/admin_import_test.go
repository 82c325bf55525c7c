package prov_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/store"
)

// blindStore hides the existing users and numbers from the import's
// pre-check, as if they were created concurrently after it.
type blindStore struct{ *store.Store }

func (b blindStore) ListUsers(context.Context, prov.UserQuery) ([]prov.User, int, error) {
	return nil, 0, nil
}

func (b blindStore) AllNumbers(context.Context) (map[string]int64, error) {
	return map[string]int64{}, nil
}

// TestImportChunkFallback: when a chunk's transaction fails on a row the
// pre-check could not see, the chunk is stored row by row; only that row
// is refused and it leaves nothing behind (no user, no number).
func TestImportChunkFallback(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := t.Context()
	pre := prov.NewDirectory(st, &prov.Events{}, time.Now)
	if _, err := pre.CreateUser(ctx, prov.UserInput{Username: "racer", FirstName: "R", LastName: "R",
		Email: "racer@example.test", Numbers: []string{"100005"}}); err != nil {
		t.Fatal(err)
	}
	var published int
	ev := &prov.Events{}
	ev.Subscribe(func(context.Context, prov.Event) { published++ })
	dir := prov.NewDirectory(blindStore{st}, ev, time.Now)
	data := string(importFile(20))
	// Row 3 takes racer's number, row 7 takes racer's name.
	data = strings.Replace(data, "user00007,", "racer,", 1)
	rep, err := prov.ImportUsersCSV(ctx, dir, bytes.NewReader([]byte(data)), prov.ImportOptions{Actor: prov.Actor{Kind: prov.ActorAdmin, Name: "t"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Created != 18 || rep.Refused != 2 {
		t.Fatalf("created %d refused %d: %+v", rep.Created, rep.Refused, rep.Results)
	}
	if r := rep.Results[5]; r.Status != prov.ImportRefused || r.Field != "numbers" || r.Line != 7 {
		t.Fatalf("row with the taken number: %+v", r)
	}
	if r := rep.Results[7]; r.Status != prov.ImportRefused || r.Field != "username" {
		t.Fatalf("row with the taken name: %+v", r)
	}
	if _, err := st.GetUser(ctx, "user00005"); err == nil {
		t.Fatal("the refused row left a user behind")
	}
	if u, err := st.UserByNumber(ctx, "100005"); err != nil || u.Username != "racer" {
		t.Fatalf("number 100005 belongs to %q: %v", u.Username, err)
	}
	if n, _ := st.CountUsers(ctx); n != 19 {
		t.Fatalf("%d users", n)
	}
	if published != 18 {
		t.Fatalf("%d user events, want one per created user", published)
	}
	audit, _ := st.ListAudit(ctx, prov.AuditQuery{Action: "user.create"})
	if len(audit) != 18 || audit[0].Actor != "admin:t" {
		t.Fatalf("%d user.create audit events", len(audit))
	}
}

var _ prov.Store = blindStore{}

// The optional params column: profile parameters per user, a
// typo refuses only its row, naming the parameter.
func TestImportParamsColumn(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := t.Context()
	dir := prov.NewDirectory(st, &prov.Events{}, time.Now)
	csv := "username,first_name,last_name,email,params\n" +
		"ann,Ann,A,ann@example.test,reg.2.address=2002; reg.2.label=Sales\n" +
		"ben,Ben,B,ben@example.test,rge.2.address=1\n"
	rep, err := prov.ImportUsersCSV(ctx, dir, strings.NewReader(csv), prov.ImportOptions{Actor: prov.Actor{Kind: prov.ActorAdmin, Name: "t"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Created != 1 || rep.Refused != 1 || rep.Results[1].Field != "params.rge.2.address" {
		t.Fatalf("created %d refused %d: %+v", rep.Created, rep.Refused, rep.Results)
	}
	u, err := st.GetUser(ctx, "ann")
	if err != nil || u.Params["reg.2.address"] != "2002" || u.Params["reg.2.label"] != "Sales" {
		t.Fatalf("ann's parameters: %+v %v", u.Params, err)
	}
}

// TestImportProgressPerRow: Progress hears of every row as it is
// prepared (its password hashed), one at a time, then of the stored
// chunks, ending with every row stored.
func TestImportProgressPerRow(t *testing.T) {
	st := openStore(t)
	dir := prov.NewDirectory(st, &prov.Events{}, time.Now)
	var b strings.Builder
	b.WriteString("username,first_name,last_name,email,password\n")
	for i := range 6 {
		fmt.Fprintf(&b, "r%d,R,S,r%d@example.test,secret-%d\n", i, i, i)
	}
	b.WriteString("bad,B,C,bad,\n") // refused by Prepare: still a row prepared
	var got []prov.ImportProgress
	rep, err := prov.ImportUsersCSV(t.Context(), dir, strings.NewReader(b.String()),
		prov.ImportOptions{Workers: 3, Progress: func(p prov.ImportProgress) { got = append(got, p) }})
	if err != nil || rep.Created != 6 {
		t.Fatalf("created %d: %v", rep.Created, err)
	}
	var want []prov.ImportProgress
	for i := range 8 {
		want = append(want, prov.ImportProgress{Phase: prov.ImportPreparing, Done: i, Total: 7})
	}
	want = append(want, prov.ImportProgress{Phase: prov.ImportStoring, Total: 6},
		prov.ImportProgress{Phase: prov.ImportStoring, Done: 6, Total: 6})
	if !slices.Equal(got, want) {
		t.Fatalf("progress\n got %+v\nwant %+v", got, want)
	}
}
