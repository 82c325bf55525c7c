// Package sipua is a small SIP user agent for load generation: one UDP
// socket per simulated handset, built on sipgo's message types and parser
// and icholy/digest. It implements only what a handset needs (REGISTER
// with digest, answering NOTIFY/OPTIONS/INVITE/BYE, placing a call) so
// ten thousand of them fit in one process.
package sipua
