// Package sip owns hotdesk's SIP side on github.com/emiago/sipgo: the
// registrar (bindings, digest authentication with the challenge's
// algorithms chosen per client, credential owners, unbind and NOTIFY
// check-sync), answering REGISTER and OPTIONS statelessly, the stateful
// proxy that routes calls under the locked-phone policy, and the SIP
// plug-and-play responder (pnp.go) that hands phones multicasting
// SUBSCRIBE ua-profile their provisioning URL.
package sip
