import gradverify
