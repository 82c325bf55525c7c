// Package sip owns hotdesk's SIP side on github.com/emiago/sipgo: the
// registrar (bindings, digest authentication, credential owners, unbind and
// NOTIFY check-sync), answering REGISTER and OPTIONS statelessly, and the
// stateful proxy that routes calls under the locked-phone policy.
package sip
