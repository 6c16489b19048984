# Turns the file IN into a C source OUT defining NAME[] (NUL-terminated) and NAME_len.
file(READ ${IN} HEX HEX)
string(LENGTH "${HEX}" HEXLEN)
math(EXPR LEN "${HEXLEN} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," BYTES "${HEX}")
file(WRITE ${OUT} "/* Generated from ${IN}; do not edit. */\n"
  "const char ${NAME}[] = {${BYTES}0x00};\n"
  "const unsigned long ${NAME}_len = ${LEN};\n")
