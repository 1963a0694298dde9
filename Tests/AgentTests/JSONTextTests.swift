import Foundation
import JSONCore
import Testing

@Suite struct JSONTextTests {
    @Test func valuesRoundTrip() throws {
        let value: JSONValue = [
            "text": "quote \" backslash \\ newline \n tab \t bell \u{07} é 漢 🎉", "int": -42, "double": .double(2.5), "big": .double(1e300),
            "null": .null, "flags": [true, false], "nested": ["a": [[:], []]],
        ]
        #expect(try JSONValue.parse(value.jsonText) == value)
        // Foundation reads what we write.
        let foundation = try JSONSerialization.jsonObject(with: Data(value.jsonText.utf8)) as? [String: Any]
        #expect(foundation?["text"] as? String == "quote \" backslash \\ newline \n tab \t bell \u{07} é 漢 🎉")
    }

    @Test func keysAreSortedAndControlCharactersEscaped() {
        #expect(JSONValue.object(["b": 1, "a": "x\u{01}y"]).jsonText == #"{"a":"x\u0001y","b":1}"#)
        #expect(JSONValue.double(3).jsonText == "3")
        #expect(JSONValue.double(.nan).jsonText == "null")
    }

    @Test func escapesAndNumbersParse() throws {
        #expect(try JSONValue.parse(#""\u00e9\ud83c\udf89\/\b""#) == .string("é🎉/\u{08}"))
        #expect(try JSONValue.parse("12") == .int(12))
        #expect(try JSONValue.parse("-0.5e2") == .double(-50))
        #expect(try JSONValue.parse("123456789012345678901234567890") == .double(123456789012345678901234567890))
        #expect(try JSONValue.parse(" [ 1 , {\"a\" : null} ] ") == [1, ["a": .null]])
    }

    @Test(arguments: [
        (#"{"a": 1,}"#, "expected a quoted key at line 1, column 9"),
        ("{\"a\": \"two\nlines\"}", "a control character (a raw newline or tab?) inside a string"),
        ("{'a': 1}", "expected a quoted key"),
        ("{\"a\": True}", "unexpected character at line 1, column 7"),
        (#"{"a": 1} trailing"#, "extra text after the JSON value"),
        ("[1, 2", "unexpected end of the text inside an array"),
        ("01", "a number cannot start with 0"),
        (#""\x""#, "an unknown escape '\\x'"),
        ("", "unexpected end of the text"),
    ])
    func badTextSaysWhereItBroke(text: String, message: String) {
        #expect {
            try JSONValue.parse(text)
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test func deepNestingIsRefusedNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(deep) }
    }
}
