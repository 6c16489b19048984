# Turns the file IN into a C source OUT defining subreg_openapi_yaml[] and its length.
file(READ ${IN} HEX HEX)
string(LENGTH "${HEX}" HEXLEN)
math(EXPR LEN "${HEXLEN} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," BYTES "${HEX}")
file(WRITE ${OUT} "/* Generated from openapi/openapi.yaml; do not edit. */\n"
  "const char subreg_openapi_yaml[] = {${BYTES}0x00};\n"
  "const unsigned long subreg_openapi_yaml_len = ${LEN};\n")
