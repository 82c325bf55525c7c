// Package sip owns hotdesk's SIP side on github.com/emiago/sipgo: the
// registrar (bindings, digest authentication with the challenge's
// algorithms chosen per client on sip/digestserver, the server side it
// shares with provisioning; credential owners, unbind and NOTIFY
// check-sync), answering REGISTER and OPTIONS statelessly, the stateful
// proxy that routes calls under the locked-phone policy (and, with
// ProxyDeps.VoicemailAddr, unanswered calls, the mailbox code and park
// codes to the voicemail server in sip/media/vm, with RFC 3842
// message-waiting in mwi.go), and the SIP plug-and-play responder
// (pnp.go) that hands phones multicasting SUBSCRIBE ua-profile their
// provisioning URL.
//
// # Load shedding
//
// The proxy holds at most sip.proxy.max_calls INVITE transactions and
// max_dialogs answered calls; a new INVITE beyond them is answered 503 with
// Retry-After before authentication and without a transaction, so offered
// load beyond the sustainable rate costs CPU, not memory.
//
// # The sipgo fork
//
// go.mod replaces github.com/emiago/sipgo v1.7.2 with sip/internal/sipgo:
// v1.7.2's non-test files of the sipgo and sip packages (gofmt'd) plus one
// patch, kept until upstream takes it. It is the upstream pull request,
// whose text follows:
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
// The fork's tests run inside it: cd sip/internal/sipgo && go test ./sip/.
package sip
