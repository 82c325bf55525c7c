package prov_test

import (
	"strings"
	"testing"

	"hotdesk/prov"
)

func TestValidateCallHandling(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    prov.CallHandling
		field string
		secs  int
	}{
		{"empty", prov.CallHandling{}, "", 0},
		{"forward always", prov.CallHandling{ForwardAlways: " +4930123456 "}, "", 0},
		{"no-answer default delay", prov.CallHandling{ForwardNoAnswer: "1002"}, "", 20},
		{"bad target", prov.CallHandling{ForwardBusy: "12 ab"}, "forward_busy", 0},
		{"target too long", prov.CallHandling{ForwardAlways: strings.Repeat("1", 65)}, "forward_always", 0},
		{"bad twinning", prov.CallHandling{Twinning: "sip:x"}, "twinning", 0},
		{"delay too short", prov.CallHandling{ForwardNoAnswer: "1002", NoAnswerSeconds: 2}, "no_answer_seconds", 2},
		{"delay too long", prov.CallHandling{NoAnswerSeconds: 121}, "no_answer_seconds", 121},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := tc.in
			err := prov.ValidateCallHandling(&ch)
			if tc.field == "" {
				if err != nil || ch.NoAnswerSeconds != tc.secs || strings.TrimSpace(ch.ForwardAlways) != ch.ForwardAlways {
					t.Fatalf("%+v: %v", ch, err)
				}
				return
			}
			if fe, ok := err.(*prov.FieldError); !ok || fe.Field != tc.field {
				t.Fatalf("error %v, want field %s", err, tc.field)
			}
		})
	}
}

func TestValidateContacts(t *testing.T) {
	ok := prov.Contact{FirstName: "Bob", Number: "2002"}
	for _, tc := range []struct {
		name  string
		in    []prov.Contact
		field string
	}{
		{"fine", []prov.Contact{ok, {LastName: "Lobby", Number: "sip:lobby@hq", SpeedDial: 2}}, ""},
		{"no name", []prov.Contact{ok, {Number: "1"}}, "contacts[1].first_name"},
		{"bad number", []prov.Contact{{FirstName: "A", Number: "a b"}}, "contacts[0].number"},
		{"speed dial range", []prov.Contact{{FirstName: "A", Number: "1", SpeedDial: 100}}, "contacts[0].speed_dial"},
		{"speed dial taken", []prov.Contact{{FirstName: "A", Number: "1", SpeedDial: 3},
			{FirstName: "B", Number: "2", SpeedDial: 3}}, "contacts[1].speed_dial"},
		{"long name", []prov.Contact{{FirstName: strings.Repeat("x", 65), Number: "1"}}, "contacts[0].first_name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := prov.ValidateContacts(tc.in)
			if tc.field == "" {
				if err != nil || tc.in[1].Position != 2 {
					t.Fatalf("%v %+v", err, tc.in)
				}
				return
			}
			if fe, ok := err.(*prov.FieldError); !ok || fe.Field != tc.field {
				t.Fatalf("error %v, want field %s", err, tc.field)
			}
		})
	}
}
