// Package sip owns hotdesk's SIP side on github.com/emiago/sipgo: the
// registrar (bindings, digest authentication with the challenge's
// algorithms chosen per client on sip/digestserver, the server side it
// shares with provisioning; credential owners, unbind and NOTIFY
// check-sync), answering REGISTER and OPTIONS statelessly, the stateful
// proxy that routes calls under the locked-phone policy (and, with
// ProxyDeps.VoicemailAddr, unanswered calls, the mailbox code and park
// codes to the voicemail server in sip/media/vm, with RFC 3842
// message-waiting in mwi.go; on a cluster a park code for a slot another
// node holds is handed to that node, park.go), and the SIP plug-and-play responder
// (pnp.go) that hands phones multicasting SUBSCRIBE ua-profile their
// provisioning URL.
//
// # Load shedding
//
// The proxy holds at most sip.proxy.max_calls INVITE transactions (a
// call's end when its ACK passes; a 2xx retransmitted later is relayed
// statelessly for its dialog, an INVITE retransmitted later is absorbed)
// and max_dialogs answered calls; a new INVITE beyond them is answered 503 with
// Retry-After before authentication and without a transaction, so offered
// load beyond the sustainable rate costs CPU, not memory. Over UDP the
// socket's reader decides (proxy_admit.go): from the raw bytes, before a
// parse, a goroutine or a transaction, it sheds new INVITEs when either is
// reached and while they wait longer than queue_delay (the kernel's arrival
// stamp to the reader, the reader to the proxy): under a burst the backlog
// of handler goroutines and datagrams in the socket buffer was what grew
// memory, and what made callers retransmit.
//
// # The sipgo fork
//
// go.mod replaces github.com/emiago/sipgo v1.7.2 with sip/internal/sipgo:
// v1.7.2's non-test files of the sipgo and sip packages (gofmt'd) plus the
// patches below, kept until upstream takes them. Each is an upstream pull
// request, whose text follows.
//
//	sip: stop Timers L and M when a transaction terminates
//
//	ServerTx.delete and ClientTx.delete stop every timer but L (server,
//	Accepted state) and M (client, Accepted state, RFC 6026). Their
//	functions hold the transaction, so a transaction terminated early
//	(Terminate after the ACK passed, as a proxy does) stays in memory with
//	everything its hooks reach for 64*T1 = 32 s: at 2,000 calls/s through a
//	stateful proxy that was ~600 MB of RSS. Stopping both timers in delete,
//	as the others are, frees it at once (481 MB, then bounded by the
//	proxy's own cap). No API change; TestServerTxTerminateStopsTimerL and
//	TestClientTxTerminateStopsTimerM cover it (they fail without the fix).
//
//	sip: write URIs without parsing the host or building the parameters
//
//	isIPV6's quick reject ranged over the indices of the host, not its
//	bytes ("for c := range host"), so it never rejected anything and every
//	URI written (Uri.StringWrite, for each From, To, Route, Record-Route,
//	Contact and Request-URI of every message sent or keyed) parsed its host
//	with net.ParseIP. A host without a colon cannot be IPv6; it is now
//	answered without parsing, with the same results. Uri.StringWrite also
//	wrote its parameters through HeaderParams.ToString, building a string
//	to copy it; ToStringWrite writes the same text into the buffer. A call
//	through a stateful proxy allocates ~4 % fewer objects (724 instead of
//	755 per INVITE…BYE). No API change; TestIsIPV6 and
//	TestUriStringWriteNoParamString cover it (the latter fails without it).
//
//	sip: write Vias and numbers without building strings
//
//	ViaHeader.StringWrite built its value as a string (Value, a
//	strings.Builder grown four times) to copy it into the buffer; it now
//	writes valueStringWrite into the buffer directly. Ports, CSeq numbers,
//	Content-Length, Max-Forwards and Expires went through strconv.Itoa,
//	which allocates from 100 on; writeInt formats them on the stack and
//	writes the digits into a bytes.Buffer, strings.Builder or any
//	io.ByteWriter (strings as before into other writers).
//	HeaderParams.ToStringWrite's string(sep) escaped, one allocation per
//	parameter list written; the three separators sipgo uses are constants
//	now. Same text, byte for byte. A call through a stateful proxy
//	allocates ~14 % fewer objects (624 instead of 727 per INVITE…BYE, with
//	the proxy's own loop hash and checks). No API change;
//	TestNumbersWrittenWithoutStrings covers it (it fails without the fix).
//
//	sip: build a request's destination without fmt
//
//	Request.Destination formatted "host:port" with fmt.Sprintf, and
//	cloneRequest asks for it, so a proxy paid it for every request it
//	relays: 3 % of a stateful proxy's CPU at 1,500 calls/s was fmt. It now
//	concatenates the host and strconv.Itoa of the port: the same text. No
//	API change; TestDestinationWithoutFmt covers it.
//
//	sip: hand a retransmitted ACK of a 2xx to the handler
//
//	An ACK that matches no INVITE transaction (the ACK of a 2xx, RFC 3261
//	17.1.1.3) gets a server transaction of its own, keyed by its branch.
//	When the UAC sends that ACK again (it answers each retransmitted 2xx,
//	13.2.2.4) before that transaction is gone, the ACK matched it and was
//	absorbed as a retransmission: a stateful proxy never forwarded it, and
//	the callee kept retransmitting its 2xx until Timer H ended the call.
//	An ACK matching a transaction an ACK made now goes to the handler as
//	the first did. No API change; TestForkAck2xxRetransmissionReachesHandler
//	(hotdesk's sip package) covers it: it fails without the fix.
//
//	sip: size a parameter list once when parsing it
//
//	UnmarshalHeaderParams appended each parameter to a nil list, so a
//	Via with branch, rport and received (every Via a proxy receives back
//	in a response: its own and the one it stamped) grew its list three
//	times. The list is now made once with room for every separator up to
//	the end (an upper bound: separators in quotes count too); with one
//	parameter or none it is left to append, as before. A stateful proxy
//	allocates one object fewer per response it relays (its own Via:
//	branch and rport), two where it stamped the caller's Via with
//	rport and received. No API change;
//	TestViaParamsParsedInOneAllocation covers it (it fails without the
//	fix).
//
//	sip: Request.ResponseDestination
//
//	A stateful proxy relays each response to where the request came from,
//	as sipgo addresses its own responses; the address a server transaction
//	resolved from the source and Via (rport) is unexported, so the only way
//	to learn it was to build a whole response (NewResponseFromRequest,
//	every header cloned) and read its Destination: ~1 KB of garbage per
//	relayed request. ResponseDestination returns the same address, and
//	NewResponseFromRequest now uses it. Additive API;
//	TestResponseDestination covers it (source only, Via port, rport).
//
//	sip: no timer per server transaction that needs no connection
//
//	serverTxRequest and serverTxCreate wrapped every new server
//	transaction's connection lookup in a 10 s context.WithTimeout, though
//	a request over UDP (and one over an open connection) finds its
//	connection without resolving or dialling: a context and a timer per
//	request (three per call through a proxy). serverRequestConnection now
//	sets the same bound itself, only before it resolves a Via or dials,
//	when its context has no deadline. A call through a stateful proxy
//	allocates 12 objects and ~0.9 KB fewer (490 instead of 502). No API
//	change; TestServerRequestConnectionBoundsResolving covers the bound
//	(without it a Via nobody resolves takes the resolver's own 20 s).
//
// The fork's tests run inside it: cd sip/internal/sipgo && go test ./sip/;
// the tests of its patches are in this package, so make test runs them.
package sip
