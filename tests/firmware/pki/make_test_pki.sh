#!/bin/sh
# Makes the API server tests' PKI in the directory given: a CA, a server
# certificate for localhost, listed and unlisted client certificates, one
# revoked client with its CRL, and an intruder from a second CA. ECDSA P-256.
set -eu

dir=$1
days=2
cd "$dir"

new_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
}

new_ca() { # name subject
    new_key "$1"
    openssl req -x509 -new -key "$1.key" -subj "$2" -days "$days" -sha256 \
        -addext "basicConstraints=critical,CA:true" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$1.pem"
}

new_leaf() { # name subject ca extensions
    new_key "$1"
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
    printf '%s\n' "$4" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial \
        -days "$days" -sha256 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

client_ext='basicConstraints=CA:false
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth'

new_ca ca "/O=otpbox development/CN=otpbox test CA"
new_ca evil-ca "/O=otpbox development/CN=otpbox test CA"

new_leaf server "/O=otpbox development/CN=localhost" ca 'basicConstraints=CA:false
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1'

new_leaf portal "/O=otpbox development/CN=otpbox-portal" ca "$client_ext"
new_leaf monitor "/O=otpbox development/CN=otpbox-monitor" ca "$client_ext"
new_leaf stranger "/O=otpbox development/CN=otpbox-stranger" ca "$client_ext"
new_leaf revoked "/O=otpbox development/CN=otpbox-revoked" ca "$client_ext"
new_leaf intruder "/O=otpbox development/CN=otpbox-portal" evil-ca "$client_ext"
new_leaf server-only "/O=otpbox development/CN=otpbox-server-only" ca 'basicConstraints=CA:false
extendedKeyUsage=serverAuth'

# A CRL of the CA that revokes "revoked".
mkdir -p crl-db
: >crl-db/index.txt
echo 1000 >crl-db/crlnumber
cat >crl-db/ca.cnf <<CNF
[ca]
default_ca = test_ca
[test_ca]
database = $dir/crl-db/index.txt
crlnumber = $dir/crl-db/crlnumber
default_md = sha256
default_crl_days = $days
CNF
openssl ca -config crl-db/ca.cnf -cert ca.pem -keyfile ca.key -revoke revoked.crt 2>/dev/null
openssl ca -config crl-db/ca.cnf -cert ca.pem -keyfile ca.key -gencrl -out crl.pem 2>/dev/null
