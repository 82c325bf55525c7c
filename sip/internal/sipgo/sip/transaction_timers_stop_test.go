package sip

import (
	"log/slog"
	"net"
	"testing"
)

type nopConn struct{}

func (nopConn) LocalAddr() net.Addr    { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060} }
func (nopConn) WriteMsg(Message) error { return nil }
func (nopConn) Ref(int) int            { return 1 }
func (nopConn) TryClose() (int, error) { return 1, nil }
func (nopConn) Close() error           { return nil }

func params(k, v string) HeaderParams {
	p := NewParams()
	p.Add(k, v)
	return p
}

func invite() *Request {
	req := NewRequest(INVITE, Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1"})
	req.AppendHeader(&ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1",
		Port: 5070, Params: params("branch", GenerateBranch())})
	req.AppendHeader(&FromHeader{Address: Uri{Scheme: "sip", User: "alice", Host: "127.0.0.1"}, Params: params("tag", "a")})
	req.AppendHeader(&ToHeader{Address: Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1"}, Params: NewParams()})
	cid := CallIDHeader("c1")
	req.AppendHeader(&cid)
	req.AppendHeader(&CSeqHeader{SeqNo: 1, MethodName: INVITE})
	req.SetTransport("UDP")
	return req
}

// Terminate stops Timer L (server, Accepted state): left running, its
// function keeps the transaction in memory for 64*T1.
func TestServerTxTerminateStopsTimerL(t *testing.T) {
	req := invite()
	tx := NewServerTx("k", req, nopConn{}, slog.Default())
	if err := tx.Init(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Respond(NewResponseFromRequest(req, 200, "OK", nil)); err != nil {
		t.Fatal(err)
	}
	tx.mu.Lock()
	armed := tx.timer_l != nil
	tx.mu.Unlock()
	if !armed {
		t.Fatal("timer L not armed after a 2xx")
	}
	tx.Terminate()
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.timer_l != nil {
		t.Error("timer L still set after Terminate")
	}
}

// Terminate stops Timer M (client, Accepted state) likewise.
func TestClientTxTerminateStopsTimerM(t *testing.T) {
	req := invite()
	tx := NewClientTx("k", req, nopConn{}, slog.Default())
	if err := tx.Init(); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range tx.Responses() {
		}
	}()
	tx.Receive(NewResponseFromRequest(req, 200, "OK", nil))
	tx.mu.Lock()
	armed := tx.timer_m != nil
	tx.mu.Unlock()
	if !armed {
		t.Fatal("timer M not armed after a 2xx")
	}
	tx.Terminate()
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.timer_m != nil {
		t.Error("timer M still set after Terminate")
	}
}
